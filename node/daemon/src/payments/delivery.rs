//! Which of our proofs each partner holds, and the payments waiting to learn it.
//!
//! Tracked per channel at the node, not per link: a cumulative `Ack`, or the `received_nonce`
//! of the partner's `Sync` after a reconnect, resolves every payment up to it; a `Reject`
//! resolves the payments of that one proof with the partner's reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use farthing_core::ChannelId;
use farthing_store::StoreError;
use tokio::sync::oneshot;

use crate::payments::PayError;

/// What a payer waits for: the partner holds its proof, or why not.
pub(crate) type Delivered = oneshot::Receiver<Result<(), PayError>>;

/// One channel's delivery state.
#[derive(Default)]
struct Channel {
    /// The highest nonce the partner acknowledged as durable (since this node started).
    acked: u64,
    /// Payments waiting for their acknowledgement, by nonce (a repeated idempotency key waits
    /// beside the original call).
    waiting: BTreeMap<u64, Vec<oneshot::Sender<Result<(), PayError>>>>,
}

/// Every channel's delivery state.
#[derive(Default)]
pub(crate) struct Deliveries(Mutex<HashMap<ChannelId, Channel>>);

impl Deliveries {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, Channel>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver for the outcome of our proof `nonce` on channel `id`: resolved at once if
    /// the partner already acknowledged it.
    pub(crate) fn expect(&self, id: ChannelId, nonce: u64) -> Delivered {
        let (tx, rx) = oneshot::channel();
        let mut channels = self.lock();
        let channel = channels.entry(id).or_default();
        if channel.acked >= nonce {
            let _ = tx.send(Ok(()));
        } else {
            channel.waiting.entry(nonce).or_default().push(tx);
        }
        rx
    }

    /// The partner holds every proof of `id` up to `nonce` (cumulative): resolve them.
    pub(crate) fn acknowledged(&self, id: ChannelId, nonce: u64) {
        let resolved = {
            let mut channels = self.lock();
            let channel = channels.entry(id).or_default();
            channel.acked = channel.acked.max(nonce);
            let later = channel.waiting.split_off(&nonce.saturating_add(1));
            std::mem::replace(&mut channel.waiting, later)
        };
        for waiter in resolved.into_values().flatten() {
            let _ = waiter.send(Ok(()));
        }
    }

    /// The partner refused our proof `nonce` of `id`, saying why.
    pub(crate) fn refused(&self, id: ChannelId, nonce: u64, reason: &str) {
        let waiters = self
            .lock()
            .get_mut(&id)
            .and_then(|c| c.waiting.remove(&nonce));
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(Err(PayError::PartnerRefused(reason.to_owned())));
        }
    }

    /// Drop the waiters of proof `nonce` of `id` whose callers stopped waiting; others waiting
    /// for the same proof keep waiting.
    pub(crate) fn forget(&self, id: ChannelId, nonce: u64) {
        let mut channels = self.lock();
        if let Some(channel) = channels.get_mut(&id)
            && let Some(waiters) = channel.waiting.get_mut(&nonce)
        {
            waiters.retain(|w| !w.is_closed());
            if waiters.is_empty() {
                channel.waiting.remove(&nonce);
            }
        }
    }

    /// Whether payments of channel `id` still wait for their acknowledgement.
    pub(crate) fn has_waiting(&self, id: ChannelId) -> bool {
        self.lock().get(&id).is_some_and(|c| !c.waiting.is_empty())
    }

    /// The table was reloaded from the store after a failure: every payment still waiting
    /// learns what became of it, and what the partners acknowledged is forgotten. A proof at
    /// or below `durable(channel)` (the latest one the store holds) was made: it is binding and
    /// reaches the partner when a link is back ([`PayError::Undelivered`]). One above it was
    /// signed in memory only and never left the process: it was not made ([`PayError::Store`]).
    pub(crate) fn reset(&self, durable: impl Fn(ChannelId) -> u64) {
        let channels = std::mem::take(&mut *self.lock());
        for (channel, state) in channels {
            let stored = durable(channel);
            for (nonce, waiters) in state.waiting {
                for waiter in waiters {
                    let outcome = if nonce <= stored {
                        PayError::Undelivered { channel, nonce }
                    } else {
                        PayError::Store(StoreError::Unavailable {
                            reason:
                                "the store failed before this payment was durable: it was not made"
                                    .into(),
                        })
                    };
                    let _ = waiter.send(Err(outcome));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cumulative_ack_resolves_every_proof_up_to_it_and_no_later_one() {
        let deliveries = Deliveries::default();
        let (one, two, three) = (
            deliveries.expect(7, 1),
            deliveries.expect(7, 2),
            deliveries.expect(7, 3),
        );
        deliveries.acknowledged(7, 2);
        assert!(matches!(one.await, Ok(Ok(()))));
        assert!(matches!(two.await, Ok(Ok(()))));
        assert!(deliveries.has_waiting(7), "nonce 3 still waits");
        // An earlier nonce asked for after the Ack resolves at once.
        assert!(matches!(deliveries.expect(7, 2).await, Ok(Ok(()))));
        deliveries.refused(7, 3, "no");
        assert!(matches!(three.await, Ok(Err(PayError::PartnerRefused(r))) if r == "no"));
        assert!(!deliveries.has_waiting(7));
    }

    #[tokio::test]
    async fn after_a_store_failure_a_durable_proof_is_undelivered_and_a_lost_one_not_made() {
        let deliveries = Deliveries::default();
        let (durable, lost) = (deliveries.expect(1, 5), deliveries.expect(1, 6));
        // The store holds nonce 5 of channel 1: 5 was made, 6 never left the process.
        deliveries.reset(|channel| if channel == 1 { 5 } else { 0 });
        assert!(matches!(
            durable.await,
            Ok(Err(PayError::Undelivered {
                channel: 1,
                nonce: 5
            }))
        ));
        assert!(matches!(lost.await, Ok(Err(PayError::Store(_)))));
        assert!(!deliveries.has_waiting(1));
    }

    #[test]
    fn a_caller_that_went_away_is_forgotten() {
        let deliveries = Deliveries::default();
        drop(deliveries.expect(1, 5));
        let kept = deliveries.expect(1, 5);
        deliveries.forget(1, 5);
        assert!(deliveries.has_waiting(1), "the one still waiting stays");
        drop(kept);
        deliveries.forget(1, 5);
        assert!(!deliveries.has_waiting(1));
    }
}
