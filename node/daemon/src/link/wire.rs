//! The frames the node builds from its channel state: a proof carrying payments, the Sync a
//! link opens with, and refusals.

use farthing_core::{Channel, ChannelId};
use farthing_peer::message::{Memo, Message, Payments, Reason, RejectCode, SignedBalance};

/// The frame carrying our proof `(nonce, transferred, signature)` of channel `id` and the
/// payments it makes: a `Pay` for one, a `PayBatch` for several.
pub(crate) fn proof_frame(
    id: ChannelId,
    (nonce, transferred): (u64, u128),
    signature: [u8; 65],
    payments: Payments,
) -> Message {
    if payments.len() == 1 {
        let (amount, memo) = payments.into_iter().next().unwrap_or((0, Memo::empty()));
        return Message::Pay {
            channel_id: id,
            nonce,
            transferred,
            amount,
            signature,
            payment_id: [0; 16],
            memo,
        };
    }
    Message::PayBatch {
        channel_id: id,
        nonce,
        transferred,
        signature,
        payments,
    }
}

/// Our latest proof of `channel` and the nonce of the partner's we hold: sent when a link comes
/// up, and again when a repeated idempotency key asks whether its payment arrived.
pub(crate) fn sync_frame(channel: &Channel) -> Message {
    let sent = channel.ours.as_ref().and_then(|p| {
        let signature = p.signature.as_ref().try_into().ok()?;
        Some(SignedBalance {
            nonce: p.nonce,
            transferred: p.transferred,
            signature,
        })
    });
    Message::Sync {
        channel_id: channel.id,
        sent,
        received_nonce: channel.their_nonce(),
    }
}

/// A refusal of the partner's proof `nonce` (or of its request, nonce 0) with the reason.
pub(crate) fn reject_frame(id: ChannelId, nonce: u64, code: RejectCode, reason: String) -> Message {
    Message::Reject {
        channel_id: id,
        nonce,
        code: code.into(),
        reason: Reason::truncated(reason),
    }
}
