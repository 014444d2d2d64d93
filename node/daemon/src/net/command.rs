//! What a partner's frame asks of the node, in mini-redis's `Command` shape: a frame becomes a
//! [`Command`] ([`Command::from_frame`]) and the command applies itself to the node's
//! components ([`Command::apply`]), adding what must be answered to the reader's [`Burst`].

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy::primitives::Address;
use farthing_core::{ChannelId, claimed};
use farthing_peer::message::{Memo, Message, RejectCode, SignedBalance};

use crate::cosign::close::CloseRequest;
use crate::cosign::withdraw::WithdrawRequest;
use crate::link::wire::reject_frame;
use crate::link::{Cosigned, Link};
use crate::net::Peering;
use crate::payments::ProofRefusal;
use crate::payments::receive::Received;
use crate::table::Durable;

/// What the reader makes of one burst of frames: the write its answers wait for, the
/// cumulative acknowledgements, the payments received, the replies.
#[derive(Default)]
pub(crate) struct Burst {
    /// The last write queued: once it is durable, so are all before it.
    pub(crate) last_durable: Option<Durable>,
    /// The highest nonce taken per channel: one `Ack` each.
    pub(crate) acks: BTreeMap<ChannelId, u64>,
    /// What the proofs taken moved, for the metrics once durable.
    pub(crate) received: Vec<Received>,
    /// Other replies (refusals, co-signatures, pongs), in order.
    pub(crate) replies: Vec<Message>,
}

/// A partner's frame, as something to do.
pub(crate) enum Command {
    /// A proof carrying payments (`Pay`: one, `PayBatch`: several).
    Proof {
        channel: ChannelId,
        proof: SignedBalance,
        payments: Vec<(u128, Memo)>,
    },
    /// The partner holds our proofs up to `nonce`.
    Ack { channel: ChannelId, nonce: u64 },
    /// The partner refused a proof of ours (`nonce` > 0), or a co-signing request of ours.
    Reject {
        channel: ChannelId,
        nonce: u64,
        code: u16,
        reason: String,
    },
    /// The partner's co-signature of our request.
    Cosigned {
        kind: Cosigned,
        channel: ChannelId,
        signature: [u8; 65],
    },
    /// The partner asks to co-sign a cooperative close.
    CloseRequest(CloseRequest),
    /// The partner asks to co-sign its withdrawal.
    WithdrawRequest(WithdrawRequest),
    /// On (re)connect: the partner's latest proof and the nonce of ours it holds.
    Sync {
        channel: ChannelId,
        sent: Option<SignedBalance>,
        received_nonce: u64,
    },
    /// A liveness check.
    Ping { nonce: u64 },
    /// Nothing to do (a frame that makes no sense after the handshake).
    Ignore,
}

impl Command {
    /// The command a frame carries.
    pub(crate) fn from_frame(message: Message) -> Self {
        match message {
            Message::Pay {
                channel_id,
                nonce,
                transferred,
                amount,
                signature,
                memo,
                ..
            } => Self::Proof {
                channel: channel_id,
                proof: SignedBalance {
                    nonce,
                    transferred,
                    signature,
                },
                payments: vec![(amount, memo)],
            },
            Message::PayBatch {
                channel_id,
                nonce,
                transferred,
                signature,
                payments,
            } => Self::Proof {
                channel: channel_id,
                proof: SignedBalance {
                    nonce,
                    transferred,
                    signature,
                },
                payments: payments.into_iter().collect(),
            },
            Message::Ack { channel_id, nonce } => Self::Ack {
                channel: channel_id,
                nonce,
            },
            Message::Reject {
                channel_id,
                nonce,
                code,
                reason,
            } => Self::Reject {
                channel: channel_id,
                nonce,
                code,
                reason: reason.into_string(),
            },
            Message::CloseAccept {
                channel_id,
                signature,
            } => Self::Cosigned {
                kind: Cosigned::Close,
                channel: channel_id,
                signature,
            },
            Message::WithdrawAccept {
                channel_id,
                signature,
            } => Self::Cosigned {
                kind: Cosigned::Withdraw,
                channel: channel_id,
                signature,
            },
            Message::CloseRequest {
                channel_id,
                payout_a,
                payout_b,
                withdrawn_a,
                withdrawn_b,
                signature,
            } => Self::CloseRequest(CloseRequest {
                channel_id,
                payouts: (payout_a, payout_b),
                withdrawn: (withdrawn_a, withdrawn_b),
                signature,
            }),
            Message::WithdrawRequest {
                channel_id,
                participant,
                total_withdrawn,
                expiry,
                signature,
            } => Self::WithdrawRequest(WithdrawRequest {
                channel_id,
                participant,
                total: total_withdrawn,
                expiry,
                signature,
            }),
            Message::Sync {
                channel_id,
                sent,
                received_nonce,
            } => Self::Sync {
                channel: channel_id,
                sent,
                received_nonce,
            },
            Message::Ping { nonce } => Self::Ping { nonce },
            _ => Self::Ignore,
        }
    }

    /// Apply the command from `peer` (on `link`) to the node; answers go into `burst`.
    pub(crate) fn apply(self, node: &Arc<Peering>, peer: Address, link: &Link, burst: &mut Burst) {
        // A Sync (or an Ack) shows the partner's node knows the channel — even one this node
        // has not applied yet (a partner's announcement can arrive first): it counts once this
        // node has it too. Only this link's partner's word counts for its channels. Checked
        // first, so the payment path (an Ack per proof) only reads.
        if let Self::Sync { channel, .. } | Self::Ack { channel, .. } = &self
            && !link.partner_knows_already(*channel)
        {
            link.partner_knows(*channel);
        }
        match self {
            Self::Proof {
                channel,
                proof,
                payments,
            } => {
                let amounts = payments.iter().map(|(amount, _)| *amount);
                let claim = claimed(amounts).map_err(ProofRefusal::from);
                let _ = node.take_proof(peer, burst, channel, proof, claim, payments);
            }
            // Only the channel's partner speaks for it.
            Self::Ack { channel, nonce } if node.table.partner_of(channel) == Some(peer) => {
                node.payments.partner_holds(channel, nonce);
            }
            Self::Reject {
                channel,
                nonce: 0,
                code,
                reason,
            } => match RejectCode::from_wire(code) {
                Some(RejectCode::Close) => link.answer(Cosigned::Close, channel, Err(reason)),
                Some(RejectCode::Withdraw) => link.answer(Cosigned::Withdraw, channel, Err(reason)),
                _ => {}
            },
            Self::Reject {
                channel,
                nonce,
                reason,
                ..
            } if node.table.partner_of(channel) == Some(peer) => {
                node.payments.partner_refused(channel, nonce, &reason);
            }
            Self::Cosigned {
                kind,
                channel,
                signature,
            } => link.answer(kind, channel, Ok(signature)),
            Self::CloseRequest(request) => {
                let (reply, durable) = node.cosign.answer_close(peer, &request);
                // The co-signature leaves only once the channel is durably frozen.
                burst.reply_after(reply, durable);
            }
            Self::WithdrawRequest(request) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let (reply, durable) = node.cosign.answer_withdraw(peer, &request, now);
                // The co-signature leaves only once the pending withdrawal is durable.
                burst.reply_after(reply, durable);
            }
            Self::Sync {
                channel,
                sent,
                received_nonce,
            } => node.sync_from(peer, burst, channel, sent, received_nonce),
            Self::Ping { nonce } => burst.replies.push(Message::Pong { nonce }),
            Self::Ack { .. } | Self::Reject { .. } | Self::Ignore => {}
        }
    }
}

impl Burst {
    /// Reply with `reply` once `durable` (if any) is durable.
    fn reply_after(&mut self, reply: Message, durable: Option<Durable>) {
        if let Some(durable) = durable {
            self.last_durable = Some(durable);
        }
        self.replies.push(reply);
    }
}

impl Peering {
    /// Check and queue `peer`'s proof of `channel` claiming `claim` (its increase must cover
    /// it): queued with its `payments`' log entries and acknowledged with the burst once
    /// durable; or refused with the reason (returned too).
    pub(crate) fn take_proof(
        &self,
        peer: Address,
        burst: &mut Burst,
        channel: ChannelId,
        proof: SignedBalance,
        claim: Result<u128, ProofRefusal>,
        payments: Vec<(u128, Memo)>,
    ) -> Result<(), ProofRefusal> {
        let at = (proof.nonce, proof.transferred);
        let payments = payments
            .into_iter()
            .map(|(amount, memo)| (amount, memo.into_bytes()))
            .collect();
        let taken = claim.and_then(|amount| {
            self.payments
                .take_proof(peer, channel, at, amount, &proof.signature, payments)
        });
        match taken {
            Ok((durable, received)) => {
                burst.last_durable = Some(durable);
                burst.acks.insert(channel, proof.nonce);
                burst.received.extend(received);
                Ok(())
            }
            Err(refusal) => {
                // The payer's caller reads this: amounts in token units.
                let reason = refusal.explain(self.decimals);
                burst.replies.push(reject_frame(
                    channel,
                    proof.nonce,
                    RejectCode::Proof,
                    reason,
                ));
                Err(refusal)
            }
        }
    }

    /// The partner's Sync: what it holds of ours settles payments whose Ack was lost (and
    /// tells this node if its own data is older than what it signed); its latest proof is
    /// taken if it is newer than ours of it (payments whose frames were lost before the
    /// reconnect: one carried history entry, no memos). A stranger's proof is refused like any.
    fn sync_from(
        &self,
        peer: Address,
        burst: &mut Burst,
        channel: ChannelId,
        sent: Option<SignedBalance>,
        received_nonce: u64,
    ) {
        if self.table.partner_of(channel) == Some(peer) {
            self.payments.partner_holds(channel, received_nonce);
        }
        let Some(latest) = sent else {
            return;
        };
        let increase = self
            .table
            .get(channel)
            .and_then(|c| c.sync_increase(latest.nonce, latest.transferred));
        if let Some(amount) = increase
            && let Err(e) = self.take_proof(peer, burst, channel, latest, Ok(amount), Vec::new())
        {
            tracing::warn!(%peer, channel, "sync proof refused: {e}");
        }
    }
}
