//! Signing payments: several payments queued on one channel share one proof.
//!
//! A payment is queued in its channel's outbox. Whoever finds the outbox idle starts a signer
//! task for it; the signer takes everything queued (as much as one frame carries), lets the
//! core plan ONE proof whose increase is the sum of the payments the channel can afford
//! ([`farthing_core::plan_batch`]), signs it, queues its synced write (with the payments'
//! idempotency keys and log entries) and then its frame under the channel table's lock, and
//! goes on while more are queued. So at low load a payment is signed at once, and under load one signature and
//! one recovery at the partner carry every payment that arrived while the previous proof was
//! being made. The payments of a batch share the proof's nonce; each keeps its own amount,
//! memo, idempotency key and answer (refused ones are told why, one by one).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use alloy::primitives::{Address, Bytes};
use farthing_core::{ChannelId, SignedProof, plan_batch_admitting};
use farthing_credential::Kind;
use farthing_peer::message::{
    MAX_BATCH, MAX_BATCH_BYTES, Memo, Payments as Batch, batch_entry_len,
};
use farthing_store::{KeyedPayment, LoggedPayment, StoreError, Write};
use tokio::sync::oneshot;

use crate::link::wire::proof_frame;
use crate::payments::delivery::Delivered;
use crate::payments::{Paid, PayError, Payments, Spender};

/// What a payment learns from its signer: the proof that carries it (signed, its write and
/// frame queued) and where the partner's acknowledgement of that proof arrives.
pub(crate) type Signed = Result<(Paid, Delivered), PayError>;

/// A payment waiting for its proof.
struct Queued {
    amount: u128,
    memo: Memo,
    /// Its idempotency key: filed in the same synced write as the proof.
    key: Option<String>,
    /// The credential it is spent under, if an agent's: its budgets are charged in the same
    /// synced write as the proof.
    spender: Option<Spender>,
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
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, Outbox>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue a payment; `true` if no signer is at work on the channel (the caller starts one).
    fn enqueue(&self, id: ChannelId, payment: Queued) -> bool {
        let mut outboxes = self.lock();
        let outbox = outboxes.entry(id).or_default();
        outbox.queued.push_back(payment);
        !std::mem::replace(&mut outbox.signing, true)
    }

    /// The next payments to sign on channel `id`: the oldest queued, as many as one frame
    /// carries. Empty once nothing is queued, and then the signer is done.
    fn next_batch(&self, id: ChannelId) -> Vec<Queued> {
        let mut outboxes = self.lock();
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
        let outbox = self.lock().remove(&id);
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

/// Add a ledger's charge to a batch's writes, replacing that ledger's earlier one: its records
/// hold absolute amounts and the batch has one `now`, so the last says everything.
fn keep_last(charges: &mut Vec<Write>, charge: Write) {
    let ledger = |w: &Write| match w {
        Write::CredentialSpend(spend) => Some(spend.ledger),
        _ => None,
    };
    match charges
        .iter_mut()
        .find(|w| ledger(w).is_some() && ledger(w) == ledger(&charge))
    {
        Some(earlier) => *earlier = charge,
        None => charges.push(charge),
    }
}

impl Payments {
    /// Queue a payment of `amount` on channel `id` (to `partner`) and wait until a proof
    /// carrying it is signed and queued for the partner.
    pub(crate) async fn sign_queued(
        self: &Arc<Self>,
        id: ChannelId,
        partner: Address,
        amount: u128,
        memo: Memo,
        key: Option<&str>,
        spender: Option<Spender>,
    ) -> Signed {
        let (signed, answer) = oneshot::channel();
        let payment = Queued {
            amount,
            memo,
            key: key.map(str::to_owned),
            spender,
            signed,
        };
        if self.outboxes.enqueue(id, payment) {
            // A task of its own: it finishes even if this caller goes away, and payments queued
            // while this one yields to it ride in the same proof.
            let payments = self.clone();
            self.tasks.spawn_counted("payment signer", async move {
                payments.sign_outbox(id, partner).await;
            });
        }
        answer.await.unwrap_or(Err(PayError::SignerStopped(id)))
    }

    /// Sign what is queued on channel `id`, one proof per batch, until nothing is.
    async fn sign_outbox(&self, id: ChannelId, partner: Address) {
        let mut signing = Signing {
            outboxes: &self.outboxes,
            id,
            done: false,
        };
        loop {
            let batch = self.outboxes.next_batch(id);
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
        // Its caller went away before it was signed: it is not made. (A keyed payment's caller
        // never goes away here: pay() waits for it in a task of its own.)
        let batch: Vec<Queued> = batch
            .into_iter()
            .filter(|p| !p.signed.is_closed())
            .collect();
        let refuse_all = |batch: Vec<Queued>, error: &dyn Fn() -> PayError| {
            for payment in batch {
                let _ = payment.signed.send(Err(error()));
            }
        };
        let mut table = self.table.lock();
        let Some(channel) = table.channel(id) else {
            return refuse_all(batch, &|| PayError::UnknownChannel(id));
        };
        // Taken under the table's lock: a link coming up meanwhile sends its Sync from the
        // table after this proof is in it, or this frame goes on that new link.
        let Some(link) = self.links.get(partner) else {
            return refuse_all(batch, &|| PayError::NoLink);
        };
        if let Err(blocked) = table.may_sign(id) {
            return refuse_all(batch, &|| PayError::blocked(id, blocked.clone()));
        }
        if let Some(reason) = self.store_health.failing() {
            return refuse_all(batch, &|| {
                PayError::Store(StoreError::Unavailable {
                    reason: reason.clone(),
                })
            });
        }
        let amounts: Vec<u128> = batch.iter().map(|p| p.amount).collect();
        // An agent's payment is carried only if its credential's budgets take it, charged as
        // they do: the charges ride in the proof's own synced write, so what the ledgers count
        // is exactly what the proof pays, across crashes.
        let channel = channel.clone();
        let now = crate::credentials::now_secs();
        let mut charges: Vec<Write> = Vec::new();
        let plan = plan_batch_admitting(&channel, &amounts, |i, amount| {
            let Some(spender) = &batch[i].spender else {
                return Ok::<(), PayError>(());
            };
            let budgets = &spender.limits().budgets;
            if budgets.is_empty() {
                return Ok(());
            }
            for charge in table.charge(budgets, Kind::Pay, amount, now, self.decimals)? {
                keep_last(&mut charges, charge);
            }
            Ok(())
        });
        let mut carried = Vec::with_capacity(batch.len());
        let mut frame = Batch::new();
        for (payment, outcome) in batch.into_iter().zip(plan.outcomes) {
            match outcome {
                Ok(()) => carried.push(payment),
                Err(e) => {
                    let _ = payment.signed.send(Err(e));
                }
            }
        }
        let Some((nonce, transferred)) = plan.proof else {
            return;
        };
        let mut answers = Vec::with_capacity(carried.len());
        // The payments' log entries and idempotency keys, in the proof's own synced write: the
        // log claims exactly what the proof pays (the committer numbers the entries).
        let mut extra = Vec::with_capacity(carried.len() + 1 + charges.len());
        extra.append(&mut charges);
        for payment in carried {
            // next_batch took no more than a frame holds, so a subset of it fits too.
            debug_assert!(
                frame.fits(payment.memo.len()),
                "a batch larger than its frame"
            );
            extra.push(Write::Payment(LoggedPayment {
                channel: id,
                outgoing: true,
                nonce,
                amount: payment.amount,
                memo: payment.memo.as_bytes().to_vec(),
                key: payment.key.clone(),
                credential: payment.spender.as_ref().map(|s| s.id().0),
                ..LoggedPayment::default()
            }));
            let _ = frame.push(payment.amount, payment.memo);
            if let Some(key) = payment.key {
                let amount = payment.amount;
                extra.push(Write::PaymentKey(
                    key,
                    KeyedPayment {
                        channel: id,
                        nonce,
                        amount,
                    },
                ));
            }
            answers.push((payment.amount, payment.signed));
        }
        let signature = self.signer.sign_proof(id, nonce, transferred);
        let mut next = channel;
        next.ours = Some(SignedProof {
            nonce,
            transferred,
            signature: Bytes::copy_from_slice(&signature),
        });
        let durable = table.commit(next, extra);
        // Each payer waits for the partner's answer to this nonce from before the frame
        // leaves, so none can miss it. The proof is signed and its write queued: the table
        // holds it whatever happens to the link; a frame that cannot be sent is delivered by
        // the Sync on reconnect.
        let waiting: Vec<_> = answers
            .into_iter()
            .map(|(amount, signed)| (amount, signed, self.deliveries.expect(id, nonce)))
            .collect();
        link.send(
            proof_frame(id, (nonce, transferred), signature, frame),
            Some(durable),
        );
        drop(table);
        for (amount, signed, delivered) in waiting {
            let paid = Paid {
                channel: id,
                nonce,
                amount,
                repeated: false,
            };
            let _ = signed.send(Ok((paid, delivered)));
        }
    }
}
