//! The receiver's side: a partner's proof is checked (the partner's signature, the core's
//! payment rules, the channel not closing, the store working) and queued as the partner's
//! latest under the channel table's lock; the caller acknowledges it only once the returned
//! write is durable (durability rule 3). The one path every incoming proof takes: a `Pay`, a
//! `PayBatch`, or the proof in a partner's `Sync`. The payments it carries enter the payment log
//! in the same synced write as the proof.

use std::sync::Arc;

use alloy::primitives::{Address, Bytes};
use farthing_core::{ChannelId, SignedProof};
use farthing_store::{LoggedPayment, Write};

use crate::payments::sales::{Sale, challenge_of};
use crate::payments::{Payments, ProofRefusal};
use crate::table::Durable;

/// What a proof taken moved, for the metrics once durable (base units, one per log entry).
pub(crate) type Received = u128;

impl Payments {
    /// Check `peer`'s proof `(nonce, transferred)` of channel `id` claiming `amount` for its
    /// `payments` (amount, memo), and queue it as the partner's latest with their log entries
    /// (and a carried one for what the proof moved beyond them); the returned write resolves
    /// once it is durable, with the amounts logged.
    pub(crate) fn take_proof(
        &self,
        peer: Address,
        id: ChannelId,
        (nonce, transferred): (u64, u128),
        amount: u128,
        signature: &[u8],
        payments: Vec<(u128, Vec<u8>)>,
    ) -> Result<(Durable, Vec<Received>), ProofRefusal> {
        if self.table.partner_of(id) != Some(peer) {
            return Err(ProofRefusal::NotShared(id));
        }
        if let Some(reason) = self.store_health.failing() {
            return Err(ProofRefusal::Store(reason));
        }
        self.signer
            .verify_proof(id, (nonce, transferred), signature, peer)?;
        let mut table = self.table.lock();
        let channel = table.channel(id).ok_or(ProofRefusal::NotShared(id))?;
        // Under the table's lock, where a co-signed close freezes the channel.
        if table.is_frozen(id) {
            return Err(ProofRefusal::Closing(id));
        }
        channel.check_incoming(nonce, transferred, amount)?;
        let moved = transferred - channel.received();
        let mut next = channel.clone();
        next.theirs = Some(SignedProof {
            nonce,
            transferred,
            signature: Bytes::copy_from_slice(signature),
        });
        let entry = |amount, memo, carried| {
            Write::Payment(LoggedPayment {
                channel: id,
                outgoing: false,
                nonce,
                amount,
                memo,
                carried,
                ..LoggedPayment::default()
            })
        };
        let mut received = Vec::with_capacity(payments.len() + 1);
        let mut entries = Vec::with_capacity(payments.len() + 1);
        let mut claimed = 0u128;
        let mut sold = Vec::new();
        for (amount, memo) in payments {
            if let Some(challenge) = challenge_of(&memo) {
                sold.push((challenge.to_owned(), amount));
            }
            claimed = claimed.saturating_add(amount);
            received.push(amount);
            entries.push(entry(amount, memo, false));
        }
        // What the proof moved beyond its payments' claims is logged too (carried), so the
        // incoming entries add up to what the channel received.
        if moved > claimed {
            received.push(moved - claimed);
            entries.push(entry(moved - claimed, Vec::new(), true));
        }
        let durable = table.commit(next, entries);
        // Filed once the write is queued, before any acknowledgement can leave: a redemption
        // waits for it to be durable.
        if !sold.is_empty() {
            let now_ms = crate::link::kept::now_ms();
            for (challenge, amount) in sold {
                let sale = Sale {
                    channel: id,
                    nonce,
                    amount,
                    at_ms: now_ms,
                };
                self.sales.file(&challenge, sale, now_ms);
            }
        }
        Ok((durable, received))
    }

    /// Count `received` payments once every write queued so far is durable (their log
    /// entries are written with their proofs).
    pub(crate) fn record_received(self: &Arc<Self>, received: Vec<Received>) {
        if received.is_empty() {
            return;
        }
        let durable = self.table.flushed();
        let payments = self.clone();
        self.tasks.spawn_counted("payment metrics", async move {
            if durable.await.is_ok() {
                for amount in received {
                    payments.metrics.received(amount);
                }
            }
        });
    }
}
