//! Why a payment was not made, or an incoming proof not taken — named by what the caller must
//! do next ([`NextStep`]), not by where the failure came from.

use farthing_core::{ChannelId, PaymentError, Rejection};
use farthing_store::StoreError;

use crate::signer::SignatureError;
use crate::table::Blocked;

/// What the caller of a failed operation must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Change the request (another channel, amount, memo or key): nothing was signed.
    FixRequest,
    /// Try again later (a link, the store, the node's health): nothing was signed.
    Retry,
    /// Do not pay again: the proof is signed and binding, and reaches the partner; repeat the
    /// call with the same idempotency key to learn the outcome.
    DoNotResend,
    /// The channel pays no more: close it (or restore the node's latest data first).
    CloseChannel,
}

/// Why `pay` did not return an acknowledged payment.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// No channel of the node has this id (fix the request).
    #[error("no channel {0}: list the node's channels to find the id")]
    UnknownChannel(ChannelId),
    /// The channel cannot make this payment: zero, more than it can pay, not open, or its
    /// nonces used up (fix the request; [`PaymentError::Exhausted`] means close the channel).
    #[error(transparent)]
    Unpayable(#[from] PaymentError),
    /// The memo does not fit a frame (fix the request).
    #[error("memo refused: {0}")]
    BadMemo(String),
    /// The idempotency key was used for a different payment (fix the request).
    #[error(
        "idempotency key {key:?} was used for a payment of {amount} base units on channel {channel}: use a new key for a new payment"
    )]
    KeyReused {
        /// The key.
        key: String,
        /// The channel of the payment made under it.
        channel: ChannelId,
        /// Its amount, base units.
        amount: u128,
    },
    /// The partner's node has not shown it knows the channel (each node applies an opening
    /// after its own confirmations): nothing was signed (retry once it has; the RPC's
    /// `waitChannel` waits for it).
    #[error(
        "the partner's node has not confirmed channel {0} yet (each node applies an opening after its own confirmations): nothing was signed; farthing_waitChannel waits until it has"
    )]
    NotReady(ChannelId),
    /// No link to the channel's partner: nothing was signed (retry once linked).
    #[error("no link to the channel's partner: connect to it (0xADDRESS@host:port) and retry")]
    NoLink,
    /// The store fails or stalls: nothing was signed (retry when the node is healthy).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task signing the channel's payments stopped before this one was signed (a bug: see
    /// the node's log). Nothing was signed for it (retry).
    #[error(
        "the payment signer of channel {0} stopped before this payment was signed (see the node's log): it was not made; retry"
    )]
    SignerStopped(ChannelId),
    /// The partner has not acknowledged the signed proof (do not resend).
    #[error(
        "the partner has not acknowledged payment nonce {nonce} on channel {channel} (the link dropped or it did not answer); \
         the proof is signed and stored and reaches the partner when the link is back: do not pay again — \
         repeat the call with the same idempotency key to learn the outcome"
    )]
    Undelivered {
        /// The channel.
        channel: ChannelId,
        /// The proof's nonce.
        nonce: u64,
    },
    /// The store failed while the signed proof was on its way, and cannot be read to tell
    /// whether it was made (do not resend: repeat the call with the same idempotency key).
    #[error(
        "the store failed while payment nonce {nonce} on channel {channel} was on its way ({reason}): \
         it may or may not have been made; do not pay again — repeat the call with the same \
         idempotency key once the node is healthy to learn the outcome"
    )]
    InDoubt {
        /// The channel.
        channel: ChannelId,
        /// The proof's nonce.
        nonce: u64,
        /// The store's failure.
        reason: String,
    },
    /// The partner refused the proof, with its reason. The proof stays signed (a signature
    /// cannot be taken back), so its amount travels with the next payment (do not resend).
    #[error(
        "the partner refused the payment: {0}; its amount is already signed and reaches the partner with the next payment"
    )]
    PartnerRefused(String),
    /// A cooperative close was signed: no more payments either way (the channel is closing).
    #[error("channel {0} is closing: no more payments")]
    Closing(ChannelId),
    /// The partner or the chain knows a newer proof of ours than this node: it signs nothing
    /// on the channel (restore the latest data, or close from the node that holds it).
    #[error("{0}")]
    Stale(String),
    /// The payer's credential has not this much budget left: nothing was signed (wait until
    /// the period frees it, or pay less).
    #[error(transparent)]
    OverBudget(#[from] farthing_credential::ledger::OverBudget),
}

impl PayError {
    /// What the caller is told: the message with its amounts in token units (`decimals`, the
    /// token's). (`Display` keeps base units, for logs.)
    pub fn explain(&self, decimals: u8) -> String {
        match self {
            Self::KeyReused {
                key,
                channel,
                amount,
            } => format!(
                "idempotency key {key:?} was used for a payment of {} on channel {channel}: use a new key for a new payment",
                farthing_core::format_amount(*amount, decimals)
            ),
            Self::Unpayable(e) => e.explain(decimals),
            _ => self.to_string(),
        }
    }

    /// What the caller must do next.
    pub fn next_step(&self) -> NextStep {
        match self {
            Self::UnknownChannel(_)
            | Self::BadMemo(_)
            | Self::KeyReused { .. }
            | Self::OverBudget(_)
            | Self::Unpayable(
                PaymentError::Zero
                | PaymentError::Insufficient { .. }
                | PaymentError::NotOpen { .. },
            ) => NextStep::FixRequest,
            Self::NoLink | Self::NotReady(_) | Self::Store(_) | Self::SignerStopped(_) => {
                NextStep::Retry
            }
            Self::Undelivered { .. } | Self::InDoubt { .. } | Self::PartnerRefused(_) => {
                NextStep::DoNotResend
            }
            Self::Closing(_) | Self::Stale(_) | Self::Unpayable(PaymentError::Exhausted { .. }) => {
                NextStep::CloseChannel
            }
        }
    }
}

impl PayError {
    /// Channel `id` signs nothing now, for the reason `blocked` gives.
    pub(crate) fn blocked(id: ChannelId, blocked: Blocked) -> Self {
        match blocked {
            Blocked::Frozen => Self::Closing(id),
            Blocked::Stale(reason) => Self::Stale(reason),
        }
    }
}

/// Why the node refuses a partner's proof (the text goes back to the payer in the `Reject`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofRefusal {
    /// The channel is not the sender's, or not the node's.
    #[error(
        "channel {0} is not known here for this peer: not confirmed here yet (each node applies an opening after its own confirmations; farthing_waitChannel on the payer's node waits for it), or not shared with this peer"
    )]
    NotShared(ChannelId),
    /// The signature is malformed or not the partner's.
    #[error("proof refused: {0}")]
    Signature(#[from] SignatureError),
    /// The proof breaks the payment rules.
    #[error("proof refused: {0}")]
    Rules(#[from] Rejection),
    /// The channel is closing: it takes no more payments.
    #[error("channel {0} is closing: no more payments")]
    Closing(ChannelId),
    /// The store fails: nothing is acknowledged until it works again.
    #[error("the receiver's store is unavailable ({0}): retry later")]
    Store(String),
}

impl ProofRefusal {
    /// What the payer is told (the `Reject`'s reason): amounts in token units (`decimals`, the
    /// token's). (`Display` keeps base units, for logs.)
    pub fn explain(&self, decimals: u8) -> String {
        match self {
            Self::Rules(rejection) => format!("proof refused: {}", rejection.explain(decimals)),
            Self::NotShared(_) | Self::Signature(_) | Self::Closing(_) | Self::Store(_) => {
                self.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_says_what_to_do() {
        let cases = [
            (PayError::UnknownChannel(1), NextStep::FixRequest),
            (PaymentError::Zero.into(), NextStep::FixRequest),
            (
                PaymentError::Exhausted { id: 1 }.into(),
                NextStep::CloseChannel,
            ),
            (PayError::NoLink, NextStep::Retry),
            (
                PayError::Undelivered {
                    channel: 1,
                    nonce: 2,
                },
                NextStep::DoNotResend,
            ),
            (PayError::PartnerRefused("x".into()), NextStep::DoNotResend),
            (PayError::Closing(1), NextStep::CloseChannel),
        ];
        for (error, step) in cases {
            assert_eq!(error.next_step(), step, "{error}");
        }
    }

    #[test]
    fn what_callers_and_payers_read_is_in_token_units() {
        let reused = PayError::KeyReused {
            key: "order-1".into(),
            channel: 3,
            amount: 250_000,
        };
        assert_eq!(
            reused.explain(6),
            "idempotency key \"order-1\" was used for a payment of 0.25 on channel 3: use a new key for a new payment"
        );
        let refused = ProofRefusal::Rules(farthing_core::Rejection::Increase {
            claimed: 1_100,
            got: 1_000,
        });
        assert_eq!(
            refused.explain(6),
            "proof refused: the proof moves 0.001, the payment claims 0.0011"
        );
        // Logs keep base units.
        assert!(refused.to_string().contains("1000 base units"));
        assert_eq!(
            ProofRefusal::Closing(1).explain(6),
            ProofRefusal::Closing(1).to_string()
        );
    }
}
