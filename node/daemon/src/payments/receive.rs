//! The receiver's side: a partner's proof is checked (the partner's signature, the core's
//! payment rules, the channel not closing, the store working) and queued as the partner's
//! latest under the channel table's lock; the caller acknowledges it only once the returned
//! write is durable (durability rule 3). The one path every incoming proof takes: a `Pay`, a
//! `PayBatch`, or the proof in a partner's `Sync`.

use std::sync::Arc;

use alloy::primitives::{Address, Bytes};
use farthing_core::{ChannelId, SignedProof};

use crate::payments::{Payments, ProofRefusal};
use crate::table::Durable;

/// A payment received, for the history once durable.
pub(crate) struct Received {
    /// The channel.
    pub(crate) channel: ChannelId,
    /// The nonce of the proof that carried it.
    pub(crate) nonce: u64,
    /// What it paid, base units.
    pub(crate) amount: u128,
    /// The payer's memo.
    pub(crate) memo: Vec<u8>,
    /// No payment of the proof claimed it (see `observe::Payment::carried`).
    pub(crate) carried: bool,
}

impl Payments {
    /// Check `peer`'s proof `(nonce, transferred)` of channel `id` claiming `amount`, and
    /// queue it as the partner's latest; the returned write resolves once it is durable, and
    /// the amount is what the proof moved (at least `amount`).
    pub(crate) fn take_proof(
        &self,
        peer: Address,
        id: ChannelId,
        (nonce, transferred): (u64, u128),
        amount: u128,
        signature: &[u8],
    ) -> Result<(Durable, u128), ProofRefusal> {
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
        Ok((table.commit(next, Vec::new()), moved))
    }

    /// Count and record `received` payments once every write queued so far is durable.
    pub(crate) fn record_received(self: &Arc<Self>, received: Vec<Received>) {
        if received.is_empty() {
            return;
        }
        let durable = self.table.flushed();
        let payments = self.clone();
        self.tasks.spawn_counted("payment history", async move {
            if durable.await.is_ok() {
                for r in received {
                    payments.metrics.received(r.amount);
                    let history = &payments.history;
                    history.record(r.channel, false, r.nonce, r.amount, r.memo, r.carried);
                }
            }
        });
    }
}
