//! Signing payments: several payments queued on one channel share one proof.
//!
//! A payment is queued in its channel's outbox. Whoever finds the outbox idle starts a signer
//! task for it; the signer takes everything queued (as much as one frame carries), signs ONE
//! proof whose increase is the sum of the payments the channel can afford, queues its synced
//! write and then its frame (`Pay` for one payment, `PayBatch` for several) under the channel
//! table's lock, and goes on while more are queued. So at low load a payment is signed at once,
//! and under load one signature and one recovery at the partner carry every payment that
//! arrived while the previous proof was being made: the crypto per payment falls as the load
//! rises. The payments of a batch share the proof's nonce; each keeps its own amount, memo,
//! idempotency key and answer (refused ones are told why, one by one).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use alloy::primitives::{Address, Bytes};
use farthing_core::{ChannelId, SignedProof};
use farthing_peer::message::{
    MAX_BATCH, MAX_BATCH_BYTES, Memo, Message, Payments, batch_entry_len,
};
use farthing_store::Write;
use tokio::sync::oneshot;

use crate::link::{Outgoing, Paid};
use crate::node::Node;
use crate::payments::{Durable, PayError};

/// What a payment learns from its signer: the proof that carries it (signed, its write and
/// frame queued) and where the partner's acknowledgement of that proof arrives.
pub(crate) type Signed = Result<(Paid, oneshot::Receiver<Result<(), PayError>>), PayError>;

/// A payment waiting for its proof.
struct Queued {
    amount: u128,
    memo: Memo,
    /// Its idempotency key: filed in the same synced write as the proof.
    key: Option<String>,
    signed: oneshot::Sender<Signed>,
}

/// The payments of one channel waiting to be signed.
#[derive(Default)]
struct Outbox {
    queued: VecDeque<Queued>,
    /// A signer task is at work on this channel.
    signing: bool,
}

/// Every channel's outbox.
#[derive(Default)]
pub(crate) struct Outboxes(Mutex<HashMap<ChannelId, Outbox>>);

impl Outboxes {
    /// Queue a payment; `true` if no signer is at work on the channel (the caller starts one).
    fn enqueue(&self, id: ChannelId, payment: Queued) -> bool {
        let mut outboxes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let outbox = outboxes.entry(id).or_default();
        outbox.queued.push_back(payment);
        !std::mem::replace(&mut outbox.signing, true)
    }

    /// The next payments to sign on channel `id`: the oldest queued, as many as one frame
    /// carries. Empty once nothing is queued, and then the signer is done.
    fn next_batch(&self, id: ChannelId) -> Vec<Queued> {
        let mut outboxes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(outbox) = outboxes.get_mut(&id) else {
            return Vec::new();
        };
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(next) = outbox.queued.front() {
            let more = bytes + batch_entry_len(next.memo.len());
            if batch.len() == MAX_BATCH || more > MAX_BATCH_BYTES {
                break;
            }
            bytes = more;
            batch.extend(outbox.queued.pop_front());
        }
        if batch.is_empty() {
            outboxes.remove(&id);
        }
        batch
    }

    /// The signer of channel `id` stopped without emptying its outbox (it panicked): every
    /// payment still queued learns it, and the next one starts a new signer.
    fn abandon(&self, id: ChannelId) {
        let outbox = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        for payment in outbox.into_iter().flat_map(|o| o.queued) {
            let _ = payment.signed.send(Err(PayError::SignerStopped(id)));
        }
    }
}

/// Abandons its channel's outbox if the signer stops before it is empty.
struct Signing<'a> {
    outboxes: &'a Outboxes,
    id: ChannelId,
    done: bool,
}

impl Drop for Signing<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.outboxes.abandon(self.id);
        }
    }
}

impl Node {
    /// Queue a payment of `amount` on channel `id` (to `partner`) and wait until a proof
    /// carrying it is signed and queued for the partner.
    pub(crate) async fn sign_queued(
        &self,
        id: ChannelId,
        partner: Address,
        amount: u128,
        memo: Memo,
        key: Option<&str>,
    ) -> Signed {
        let (signed, answer) = oneshot::channel();
        let payment = Queued {
            amount,
            memo,
            key: key.map(str::to_owned),
            signed,
        };
        if self.outboxes().enqueue(id, payment) {
            // A task of its own: it finishes even if this caller goes away, and payments queued
            // while this one yields to it ride in the same proof.
            let node = self.clone();
            tokio::spawn(async move { node.sign_outbox(id, partner).await });
        }
        answer.await.unwrap_or(Err(PayError::LinkDown))
    }

    /// Sign what is queued on channel `id`, one proof per batch, until nothing is.
    async fn sign_outbox(&self, id: ChannelId, partner: Address) {
        let mut signing = Signing {
            outboxes: self.outboxes(),
            id,
            done: false,
        };
        loop {
            let batch = self.outboxes().next_batch(id);
            if batch.is_empty() {
                signing.done = true;
                return;
            }
            self.sign_batch(id, partner, batch);
            // Let the payers just answered (and other channels) run; more queue meanwhile.
            tokio::task::yield_now().await;
        }
    }

    /// Sign one proof carrying every payment of `batch` the channel can afford, in order (the
    /// others are told why not), then queue its synced write (with the payments' idempotency
    /// keys) and its frame behind it, all under the channel table's lock.
    fn sign_batch(&self, id: ChannelId, partner: Address, batch: Vec<Queued>) {
        let mut batch = batch.into_iter();
        let outcome = self.with_channel(id, |channel, group| {
            // Taken under the table's lock: a link coming up meanwhile sends its Sync from the
            // table after this proof is in it, or this frame goes on that new link.
            let link = self.links().get(partner).ok_or(PayError::LinkDown)?;
            let mut carried = Vec::with_capacity(batch.len());
            let mut payments = Payments::new();
            let mut taken = 0u128;
            let mut proof_at = None;
            // Checked once for the batch (the table's lock is held); a refusal is made again
            // for each payer, to hand each its own error.
            let allowed = self.may_sign(id).is_ok();
            for payment in batch.by_ref() {
                // Its caller went away before it was signed: it is not made. (A keyed payment's
                // caller never goes away here: pay() waits for it in a task of its own.)
                if payment.signed.is_closed() {
                    continue;
                }
                let step = if allowed { Ok(()) } else { self.may_sign(id) }
                    .and_then(|()| Ok(channel.next_payment_after(taken, payment.amount)?));
                let step = step.and_then(|at| {
                    payments
                        .push(payment.amount, payment.memo)
                        .map(|()| at)
                        .map_err(|_| PayError::BadMemo("the batch is full".into()))
                });
                match step {
                    Ok(at) => {
                        taken += payment.amount;
                        proof_at = Some(at);
                        carried.push((payment.amount, payment.key, payment.signed));
                    }
                    Err(e) => {
                        let _ = payment.signed.send(Err(e));
                    }
                }
            }
            let Some((nonce, transferred)) = proof_at else {
                return Ok((channel.clone(), ()));
            };
            let digest = self.proof_digest(id, nonce, transferred);
            let signature = self.fast_signer().sign(&digest);
            let mut next = channel.clone();
            next.ours = Some(SignedProof {
                nonce,
                transferred,
                signature: Bytes::copy_from_slice(&signature),
            });
            let mut writes = vec![Write::Channel(next.clone())];
            for (amount, key, _) in &carried {
                if let Some(key) = key {
                    writes.push(Write::PaymentKey(
                        key.clone(),
                        farthing_store::KeyedPayment {
                            channel: id,
                            nonce,
                            amount: *amount,
                        },
                    ));
                }
            }
            let durable: Durable = Box::pin(group.submit(writes));
            let message = if payments.len() == 1 {
                let (amount, memo) = payments.into_iter().next().unwrap_or_default();
                Message::Pay {
                    channel_id: id,
                    nonce,
                    transferred,
                    amount,
                    signature,
                    payment_id: [0; 16],
                    memo,
                }
            } else {
                Message::PayBatch {
                    channel_id: id,
                    nonce,
                    transferred,
                    signature,
                    payments,
                }
            };
            // Each payer waits for the partner's answer to this nonce from before the frame
            // leaves, so none can miss it.
            let answers: Vec<_> = carried
                .into_iter()
                .map(|(amount, _, signed)| (amount, signed, self.links().expect(id, nonce)))
                .collect();
            // The proof is signed and its write queued: the table takes it whatever happens to
            // the link. A frame that cannot be sent is delivered by the Sync on reconnect.
            let _ = link.outgoing.send(Outgoing {
                ready: Some(durable),
                message,
            });
            for (amount, signed, delivered) in answers {
                let paid = Paid {
                    channel: id,
                    nonce,
                    amount,
                    repeated: false,
                };
                let _ = signed.send(Ok((paid, delivered)));
            }
            Ok::<_, PayError>((next, ()))
        });
        // Refused before any payment was looked at: no link, or no such channel.
        if let Err(e) = outcome {
            let no_link = matches!(e, PayError::LinkDown);
            for payment in batch {
                let _ = payment.signed.send(Err(if no_link {
                    PayError::LinkDown
                } else {
                    PayError::UnknownChannel(id)
                }));
            }
        }
    }
}
