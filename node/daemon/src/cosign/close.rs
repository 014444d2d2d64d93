//! Cooperative close, both sides (durability rule 13). The requester freezes the channel
//! durably, waits until every payment it sent is acknowledged, catches up with the chain, and
//! sends its signature on the payouts both should compute; the partner co-signs only the
//! payouts it computes itself ([`farthing_core::Channel::check_close_request`]), freezing the
//! channel durably under the table's lock before its signature leaves. A co-signed close has no
//! expiry, so neither side takes a payment on the channel again.

use std::time::Duration;

use alloy::primitives::{Address, Bytes, U256, Uint};
use farthing_chain::TxOutcome;
use farthing_chain::messages::CooperativeClose;
use farthing_core::{CHAIN_VIEWS_DIFFER as BEHIND, Channel, ChannelId};
use farthing_peer::message::{Message, RejectCode};

use crate::cosign::{ANSWER_TIMEOUT, Cosign, CosignError};
use crate::link::wire::reject_frame;
use crate::link::{Cosigned, Link};
use crate::table::Durable;

/// How long the requester waits for the partner to acknowledge what it sent before the close.
const SETTLE_PAYMENTS: Duration = Duration::from_secs(5);

/// Attempts when the partner's view of the chain lags ours (a withdrawal or top-up just mined).
const ATTEMPTS: u32 = 3;

/// The message both sign: close `channel` now paying `payouts`, at its withdrawal totals.
fn close_message(channel: &Channel, (payout_a, payout_b): (u128, u128)) -> CooperativeClose {
    CooperativeClose {
        channelId: U256::from(channel.id),
        payoutA: U256::from(payout_a),
        payoutB: U256::from(payout_b),
        withdrawnA: Uint::from(channel.on_chain.withdrawn_a),
        withdrawnB: Uint::from(channel.on_chain.withdrawn_b),
    }
}

impl Cosign {
    /// Ask the partner to co-sign closing channel `id` on the balances both hold, then submit
    /// the cooperative close (one transaction). Fails with [`CosignError::NoLink`],
    /// [`CosignError::NoAnswer`] or [`CosignError::PartnerRefused`] when the partner is away or
    /// disagrees: the caller then closes unilaterally.
    pub(crate) async fn close(&self, id: ChannelId) -> Result<TxOutcome, CosignError> {
        let channel = self.table.get(id).ok_or(CosignError::UnknownChannel(id))?;
        let link = self.links.get(channel.partner).ok_or(CosignError::NoLink)?;
        // Durably, before our signature leaves in the request.
        let frozen = self.table.lock().freeze(id);
        frozen.await?;
        // Every payment we sent must be acknowledged before the balances are final.
        let deadline = tokio::time::Instant::now() + SETTLE_PAYMENTS;
        while self.payments.has_waiting(id) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Both nodes must have applied the same chain events (a withdrawal just executed, a
        // top-up): catch up first, and if the partner is behind, give it a moment to catch up.
        let mut attempt = 0;
        let (channel, ours, theirs) = loop {
            attempt += 1;
            let _ = self.watcher.sync().await;
            let channel = self.table.get(id).ok_or(CosignError::UnknownChannel(id))?;
            match self.ask(&link, &channel).await {
                Ok((ours, theirs)) => break (channel, ours, theirs),
                Err(CosignError::PartnerRefused(reason))
                    if attempt < ATTEMPTS && reason.starts_with(BEHIND) =>
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let payouts = channel.close_payouts();
        let (sig_a, sig_b) = channel.role.order(
            Bytes::copy_from_slice(&ours),
            Bytes::copy_from_slice(&theirs),
        );
        let client = &self.chain.client;
        Ok(client
            .cooperative_close(id, payouts.0, payouts.1, sig_a, sig_b)
            .await?)
    }

    /// Send our signed close of `channel` on its current balances; (ours, the partner's
    /// verified signature).
    async fn ask(
        &self,
        link: &Link,
        channel: &Channel,
    ) -> Result<([u8; 65], [u8; 65]), CosignError> {
        let payouts = channel.close_payouts();
        let message = close_message(channel, payouts);
        let ours = self.signer.sign(&message);
        let answer = link.expect_answer(Cosigned::Close, channel.id);
        let request = Message::CloseRequest {
            channel_id: channel.id,
            payout_a: payouts.0,
            payout_b: payouts.1,
            withdrawn_a: channel.on_chain.withdrawn_a,
            withdrawn_b: channel.on_chain.withdrawn_b,
            signature: ours,
        };
        if !link.send(request, None) {
            return Err(CosignError::NoLink);
        }
        let theirs = match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Ok(Ok(Ok(signature))) => signature,
            Ok(Ok(Err(reason))) => return Err(CosignError::PartnerRefused(reason)),
            _ => return Err(CosignError::NoAnswer),
        };
        self.signer.verify(&message, &theirs, channel.partner)?;
        Ok((ours, theirs))
    }

    /// Answer `peer`'s close request: co-sign only the payouts this node computes itself.
    /// Returns the reply and the write it must wait for (the channel frozen).
    pub(crate) fn answer_close(
        &self,
        peer: Address,
        request: &CloseRequest,
    ) -> (Message, Option<Durable>) {
        let id = request.channel_id;
        let refuse = |why: String| {
            self.log_refusal("close", peer, id, &why);
            (reject_frame(id, 0, RejectCode::Close, why), None)
        };
        // Checked and frozen under the channel table's lock: a payment signed or taken in
        // between would be left out of the payouts and undone by this close.
        let mut table = self.table.lock();
        let Some(channel) = table.channel(id) else {
            return refuse(format!("no channel {id}"));
        };
        if channel.partner != peer {
            return refuse(format!("channel {id} is not shared with {peer}"));
        }
        if let Err(refusal) = channel.check_close_request(request.payouts, request.withdrawn) {
            if refusal.is_retryable() {
                // One of us has not applied the latest withdrawal yet: catch up for the retry.
                let watcher = self.watcher.clone();
                self.tasks.spawn("catch-up pass", async move {
                    let _ = watcher.sync().await;
                });
            }
            // The partner's node logs it (its close goes unilateral): token units.
            return refuse(refusal.explain(self.chain.deployment.token_decimals));
        }
        let message = close_message(channel, request.payouts);
        if let Err(e) = self.signer.verify(&message, &request.signature, peer) {
            return refuse(e.to_string());
        }
        let frozen = table.freeze(id);
        drop(table);
        let reply = Message::CloseAccept {
            channel_id: id,
            signature: self.signer.sign(&message),
        };
        (reply, Some(frozen))
    }
}

/// A partner's close request, as read off the wire.
pub(crate) struct CloseRequest {
    /// The channel.
    pub(crate) channel_id: ChannelId,
    /// (to A, to B).
    pub(crate) payouts: (u128, u128),
    /// The withdrawal totals (A, B) the close is signed at.
    pub(crate) withdrawn: (u128, u128),
    /// The partner's signature.
    pub(crate) signature: [u8; 65],
}
