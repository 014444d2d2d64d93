//! Off-chain payments at the node: the pay entry point ([`Payments::pay`]), the signer that
//! puts queued payments into one proof ([`outbox`]), idempotency keys ([`idempotency`]), the
//! delivery of our proofs ([`delivery`]) and the receiver's side ([`receive`]).
//!
//! Sending: a payment is queued in its channel's outbox; the signer signs the next proof for
//! every payment queued at that moment under the channel table's lock and, still under it,
//! queues the synced write and the `Pay` (or `PayBatch`) frame; the link's writer sends the
//! frame only once the write is durable (durability rule 1), in queue order. The call returns
//! when the partner's cumulative `Ack` covers its nonce. A payer whose link drops before the
//! `Ack` waits a few seconds for the redial and the partner's `Sync` to settle it, then learns
//! [`PayError::Undelivered`]: signed and kept, delivered when the link is back.

#[cfg(test)]
mod budget_tests;
pub(crate) mod delivery;
mod error;
pub(crate) mod idempotency;
pub(crate) mod outbox;
pub(crate) mod receive;
pub mod sales;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use farthing_core::{ChainState, ChannelId, PaymentError};
use farthing_peer::message::Memo;
use farthing_store::Store;

use crate::health::StoreHealth;
use crate::link::Links;
use crate::link::wire::sync_frame;
use crate::observe::Metrics;
use crate::signer::Signer;
use crate::table::ChannelTable;
use crate::tasks::Tasks;
use delivery::{Delivered, Deliveries};
use idempotency::{Keyed, Keys};
use outbox::Outboxes;

pub use error::{NextStep, PayError, ProofRefusal};

/// How long a payment waits for its acknowledgement on a link that stays open.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a payment whose link dropped waits for the link to come back and the partner's
/// `Sync` to say whether it arrived.
pub(crate) const RESYNC_GRACE: Duration = Duration::from_secs(5);

/// How long a payment waits for the partner's node to show it knows a channel (it may be
/// applying the opening) before it is refused unsigned.
const PARTNER_GRACE: Duration = Duration::from_secs(3);

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

/// The payments component: what it needs, nothing more.
pub(crate) struct Payments {
    pub(crate) table: Arc<ChannelTable>,
    pub(crate) signer: Arc<Signer>,
    pub(crate) links: Arc<Links>,
    pub(crate) store_health: Arc<StoreHealth>,
    /// The store, read when a flush failed (was a proof made?).
    pub(crate) store: Arc<dyn Store>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tasks: Tasks,
    pub(crate) deliveries: Deliveries,
    pub(crate) outboxes: Outboxes,
    pub(crate) keys: Keys,
    pub(crate) sales: Arc<sales::Sales>,
    /// The token's decimals (refusals state amounts in token units).
    pub(crate) decimals: u8,
}

/// The credential a payment is spent under (an agent's): its budgets are charged with the
/// proof, and the payment's log entry names it.
pub(crate) type Spender = Arc<farthing_rpc::Agent>;

impl Payments {
    /// Pay `amount` on channel `id` over the link to its partner, with a memo for the partner
    /// and an optional idempotency key; returns once the partner acknowledged the payment as
    /// durable.
    ///
    /// With a key: a key already used answers with the payment first made under it (waiting
    /// for its delivery if need be) and pays nothing; the key is stored in the same synced
    /// write as the proof, so this holds across restarts.
    pub(crate) async fn pay(
        self: &Arc<Self>,
        id: ChannelId,
        amount: u128,
        memo: &[u8],
        key: Option<&str>,
        spender: Option<Spender>,
    ) -> Result<Paid, PayError> {
        let (partner, state) = self
            .table
            .lock()
            .channel(id)
            .map(|c| (c.partner, c.on_chain.state))
            .ok_or(PayError::UnknownChannel(id))?;
        // A channel that is not open says so first, whatever else (no link, a signed close)
        // is also true of it: one answer for one situation.
        if state != ChainState::Open {
            return Err(PaymentError::NotOpen { id, state }.into());
        }
        self.store_health.require()?;
        // (A repeat of a key already paid answers with that payment, whoever knows what.)
        let knows_now = self
            .links
            .get(partner)
            .is_none_or(|link| link.partner_knows_already(id));
        if !knows_now && !matches!(key, Some(k) if self.keys.used(k).await) {
            self.partner_knows(id, partner).await?;
        }
        let memo = Memo::new(memo.to_vec()).map_err(|e| PayError::BadMemo(e.to_string()))?;
        let started = Instant::now();
        // (The payment's log entry went into its proof's synced write: see the outbox.)
        let record = |paid: Paid| {
            if !paid.repeated {
                self.metrics.paid(paid.amount, started.elapsed());
            }
            paid
        };
        let Some(key) = key else {
            let (paid, delivered) = self
                .sign_queued(id, partner, amount, memo, None, spender)
                .await?;
            return self
                .await_delivery(paid, delivered, ACK_TIMEOUT)
                .await
                .map(record);
        };
        match self
            .pay_keyed(id, partner, amount, memo, key, spender)
            .await?
        {
            Keyed::New(paid, delivered) => self
                .await_delivery(paid, delivered, ACK_TIMEOUT)
                .await
                .map(record),
            Keyed::Earlier(earlier) => self.repeat(id, amount, key, earlier).await,
        }
    }

    /// Whether the partner's node knows channel `id` (a Sync or an Ack for it on the link):
    /// a proof it cannot take would be refused after it was signed, its amount carried by the
    /// next proof. Right after an open the partner may still be applying it: wait up to
    /// [`PARTNER_GRACE`]; past that nothing is signed. Without a link the outbox answers.
    async fn partner_knows(&self, id: ChannelId, partner: Address) -> Result<(), PayError> {
        let deadline = tokio::time::Instant::now() + PARTNER_GRACE;
        // A link replaced while this waits is looked up again (its Syncs tell it anew).
        let mut waited_on: Option<Arc<crate::link::Link>> = None;
        loop {
            let Some(link) = self.links.get(partner) else {
                return Ok(());
            };
            // Gone and not yet replaced: the outbox answers (no link).
            if waited_on
                .as_ref()
                .is_some_and(|old| Arc::ptr_eq(old, &link))
            {
                return Ok(());
            }
            if link.partner_knows_already(id) {
                return Ok(());
            }
            let mut known = link.known_by_partner();
            let mut gone = link.gone();
            waited_on = Some(link);
            tokio::select! {
                learned = known.wait_for(|known| known.contains(&id)) => {
                    if learned.is_ok() {
                        return Ok(());
                    }
                }
                _ = gone.wait_for(|gone| *gone) => {}
                () = tokio::time::sleep_until(deadline) => return Err(PayError::NotReady(id)),
            }
        }
    }

    /// A repeated idempotency key: answer with the payment made under it, paying nothing.
    async fn repeat(
        &self,
        id: ChannelId,
        amount: u128,
        key: &str,
        earlier: farthing_store::KeyedPayment,
    ) -> Result<Paid, PayError> {
        if earlier.channel != id || earlier.amount != amount {
            return Err(PayError::KeyReused {
                key: key.to_owned(),
                channel: earlier.channel,
                amount: earlier.amount,
            });
        }
        let delivered = self.deliveries.expect(earlier.channel, earlier.nonce);
        let repeat = Paid {
            channel: earlier.channel,
            nonce: earlier.nonce,
            amount: earlier.amount,
            repeated: true,
        };
        // Not acknowledged yet (the partner refused it, or the link dropped): offer the partner
        // our latest proof again; it carries this payment, and the partner acks it if it takes
        // it now. Nothing new is signed.
        if let Some(channel) = self.table.get(earlier.channel)
            && let Some(link) = self.links.get(channel.partner)
        {
            link.send(sync_frame(&channel), Some(self.table.flushed()));
        }
        self.await_delivery(repeat, delivered, RESYNC_GRACE).await
    }

    /// Wait until the partner holds our proof `paid.nonce`: its Ack on the link (for at most
    /// `patience`), or — if the link drops — its Sync once the link is back (for
    /// [`RESYNC_GRACE`]).
    async fn await_delivery(
        &self,
        paid: Paid,
        mut delivered: Delivered,
        patience: Duration,
    ) -> Result<Paid, PayError> {
        // A dropped sender means nothing answered for a proof that is signed: undelivered.
        let outcome = |answer: Result<Result<(), PayError>, _>| match answer {
            Ok(answer) => Some(answer.map(|()| paid)),
            Err(_) => None,
        };
        let link = self
            .table
            .partner_of(paid.channel)
            .and_then(|p| self.links.get(p));
        if let Some(link) = link {
            let mut gone = link.gone();
            tokio::select! {
                answer = &mut delivered => match outcome(answer) {
                    Some(answer) => return answer,
                    None => return self.undelivered(paid).await,
                },
                // (The watch's guard is dropped inside: it must not live across an await.)
                _ = async { gone.wait_for(|gone| *gone).await.is_ok() } => {}
                () = tokio::time::sleep(patience) => {
                    drop(delivered);
                    return self.undelivered(paid).await;
                }
            }
        }
        match tokio::time::timeout(RESYNC_GRACE, &mut delivered).await {
            Ok(answer) => match outcome(answer) {
                Some(answer) => answer,
                None => self.undelivered(paid).await,
            },
            Err(_) => {
                drop(delivered);
                self.undelivered(paid).await
            }
        }
    }

    /// The payer stops waiting: the proof is signed and binding; say "stored" only once it
    /// is. If the store failed meanwhile, the store itself says whether the proof was made:
    /// every write queued before the flush has been tried by then, and a failed one is never
    /// tried again (the table is reloaded from the store).
    async fn undelivered(&self, paid: Paid) -> Result<Paid, PayError> {
        self.deliveries.forget(paid.channel, paid.nonce);
        let (channel, nonce) = (paid.channel, paid.nonce);
        let Err(failure) = self.table.flushed().await else {
            return Err(PayError::Undelivered { channel, nonce });
        };
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.channel(channel)).await;
        match stored {
            Ok(Ok(stored)) if stored.as_ref().is_some_and(|c| c.our_nonce() >= nonce) => {
                Err(PayError::Undelivered { channel, nonce })
            }
            Ok(Ok(_)) => Err(PayError::Store(failure)),
            Ok(Err(e)) => Err(PayError::InDoubt {
                channel,
                nonce,
                reason: e.to_string(),
            }),
            Err(e) => Err(PayError::InDoubt {
                channel,
                nonce,
                reason: e.to_string(),
            }),
        }
    }

    /// The partner holds our proofs of channel `id` up to `nonce` (its Ack, or its Sync's
    /// received nonce): resolve the payers; a nonce past what we signed makes the channel
    /// stale and acknowledges nothing we hold.
    pub(crate) fn partner_holds(&self, id: ChannelId, nonce: u64) {
        self.table.note_seen(id, nonce, "the partner");
        let acknowledged = self
            .table
            .get(id)
            .map_or(0, |c| c.partner_holds(nonce).acknowledged);
        self.deliveries.acknowledged(id, acknowledged);
    }

    /// The partner refused our proof `nonce` of channel `id`.
    pub(crate) fn partner_refused(&self, id: ChannelId, nonce: u64, reason: &str) {
        self.deliveries.refused(id, nonce, reason);
    }

    /// Whether payments of channel `id` still wait for their acknowledgement.
    pub(crate) fn has_waiting(&self, id: ChannelId) -> bool {
        self.deliveries.has_waiting(id)
    }

    /// After the table was reloaded from the store: tell the payments still waiting whether
    /// their proof was made (see [`Deliveries::reset`]) and forget the idempotency keys that
    /// were never made durable.
    pub(crate) async fn forget_undurable(&self) {
        let table = self.table.clone();
        self.deliveries
            .reset(|id| table.get(id).map_or(0, |c| c.our_nonce()));
        self.keys.forget_undurable().await;
        if let Err(e) = self.sales.reload(crate::link::kept::now_ms()) {
            tracing::warn!(error = %e, "could not refile the unredeemed sales from the payment log");
        }
    }
}
