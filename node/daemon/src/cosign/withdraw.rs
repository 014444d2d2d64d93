//! Cooperative withdrawal, both sides (durability rule 11). Each side records the withdrawal as
//! pending — durably, before its signature leaves — and counts it as withdrawn for spending
//! until it executes or expires (chain time). The core decides what may be asked for
//! ([`farthing_core::Channel::propose_withdrawal`]) and what may be co-signed
//! ([`farthing_core::Channel::check_withdraw_request`]).

use alloy::primitives::{Address, Bytes, U256, Uint};
use farthing_chain::TxOutcome;
use farthing_chain::messages::Withdraw;
use farthing_core::{Channel, ChannelId};
use farthing_peer::message::{Message, RejectCode};

use crate::cosign::{ANSWER_TIMEOUT, Cosign, CosignError};
use crate::link::Cosigned;
use crate::link::wire::reject_frame;
use crate::table::Durable;

/// The message both sign: `participant` may withdraw up to `total` until `expiry`.
fn withdraw_message(id: ChannelId, participant: Address, total: u128, expiry: u64) -> Withdraw {
    Withdraw {
        channelId: U256::from(id),
        participant,
        totalWithdrawn: Uint::from(total),
        expiry,
    }
}

/// A partner's withdrawal request, as read off the wire.
pub(crate) struct WithdrawRequest {
    /// The channel.
    pub(crate) channel_id: ChannelId,
    /// Who withdraws (must be the partner itself).
    pub(crate) participant: Address,
    /// Its new total withdrawn.
    pub(crate) total: u128,
    /// Chain time after which the signatures are void.
    pub(crate) expiry: u64,
    /// The partner's signature.
    pub(crate) signature: [u8; 65],
}

impl Cosign {
    /// Ask the partner to co-sign our withdrawal of `amount` from channel `id` while it stays
    /// open, then submit it (one transaction; the tokens come to us).
    pub(crate) async fn withdraw(
        &self,
        id: ChannelId,
        amount: u128,
        expiry: u64,
    ) -> Result<TxOutcome, CosignError> {
        let partner = self
            .table
            .partner_of(id)
            .ok_or(CosignError::UnknownChannel(id))?;
        if self.table.is_frozen(id) {
            return Err(CosignError::Closing(id));
        }
        let link = self.links.get(partner).ok_or(CosignError::NoLink)?;
        if let Some(reason) = self.table.stale_reason(id) {
            return Err(CosignError::Stale(reason));
        }
        let us = self.signer.address();
        let (message, ours, durable) = {
            let mut table = self.table.lock();
            table
                .may_sign(id)
                .map_err(|blocked| CosignError::blocked(id, blocked))?;
            let channel = table.channel(id).ok_or(CosignError::UnknownChannel(id))?;
            let pending = channel.propose_withdrawal(amount, expiry)?;
            let message = withdraw_message(id, us, pending.total, expiry);
            let mut next = channel.clone();
            next.withdrawal = Some(pending);
            let ours = self.signer.sign(&message);
            (message, ours, table.commit(next, Vec::new()))
        };
        durable.await?;
        let total = message.totalWithdrawn.to::<u128>();
        let answer = link.expect_answer(Cosigned::Withdraw, id);
        let request = Message::WithdrawRequest {
            channel_id: id,
            participant: us,
            total_withdrawn: total,
            expiry,
            signature: ours,
        };
        if !link.send(request, None) {
            return Err(CosignError::NoLink);
        }
        let theirs = match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Ok(Ok(Ok(signature))) => signature,
            Ok(Ok(Err(reason))) => {
                // Not co-signed: nothing can execute, our balance is ours again.
                self.drop_refused(id, total);
                return Err(CosignError::PartnerRefused(reason));
            }
            // No answer: the partner may have co-signed, so the withdrawal stays pending here
            // until its expiry (only our own spending is held back by it).
            _ => return Err(CosignError::NoAnswer),
        };
        self.signer.verify(&message, &theirs, partner)?;
        let role = self
            .table
            .get(id)
            .ok_or(CosignError::UnknownChannel(id))?
            .role;
        let (sig_a, sig_b) = role.order(
            Bytes::copy_from_slice(&ours),
            Bytes::copy_from_slice(&theirs),
        );
        let client = &self.chain.client;
        Ok(client.withdraw(id, us, total, expiry, sig_a, sig_b).await?)
    }

    /// Forget our pending withdrawal of `total` on channel `id` (the partner did not co-sign).
    fn drop_refused(&self, id: ChannelId, total: u128) {
        let mut table = self.table.lock();
        let Some(mut next) = table.channel(id).cloned() else {
            return;
        };
        if next.drop_refused_withdrawal(total) {
            // Losing this write to a crash only keeps the amount held back until the expiry.
            drop(table.commit(next, Vec::new()));
        }
    }

    /// Answer `peer`'s withdrawal request at unix time `now`: co-sign only a withdrawal of
    /// what the partner can still pay by this node's own books, recording it as pending in the
    /// same write. Returns the reply and the write it must wait for.
    pub(crate) fn answer_withdraw(
        &self,
        peer: Address,
        request: &WithdrawRequest,
        now: u64,
    ) -> (Message, Option<Durable>) {
        let id = request.channel_id;
        let decimals = self.chain.deployment.token_decimals;
        let refuse = |why: String| {
            self.log_refusal("withdrawal", peer, id, &why);
            (reject_frame(id, 0, RejectCode::Withdraw, why), None)
        };
        let check = |channel: &Channel| {
            channel.check_withdraw_request(request.participant, request.total, request.expiry, now)
        };
        // The cheap checks first (on a copy), the signature's recovery after them.
        let Some(channel) = self.table.get(id).filter(|c| c.partner == peer) else {
            return refuse(format!("channel {id} is not shared with {peer}"));
        };
        if self.table.is_frozen(id) {
            return refuse(format!("channel {id} is closing"));
        }
        if let Err(refusal) = check(&channel) {
            return refuse(refusal.explain(decimals));
        }
        let message = withdraw_message(id, peer, request.total, request.expiry);
        if let Err(e) = self.signer.verify(&message, &request.signature, peer) {
            return refuse(e.to_string());
        }
        // Again under the table's lock, where payments change the balances it checks.
        let mut table = self.table.lock();
        let Some(channel) = table.channel(id) else {
            return refuse(format!("channel {id} is not shared with {peer}"));
        };
        if table.is_frozen(id) {
            return refuse(format!("channel {id} is closing"));
        }
        let pending = match check(channel) {
            Ok(pending) => pending,
            Err(refusal) => return refuse(refusal.explain(decimals)),
        };
        let mut next = channel.clone();
        next.withdrawal = Some(pending);
        let durable = table.commit(next, Vec::new());
        drop(table);
        let reply = Message::WithdrawAccept {
            channel_id: id,
            signature: self.signer.sign(&message),
        };
        (reply, Some(durable))
    }
}
