//! Every failure of the node mapped to the API's stable error codes (`farthing_rpc::code`),
//! one match per operation's error type and no catch-all: a new variant must be mapped here
//! before it compiles.

use farthing_chain::ChainError;
use farthing_core::{ChannelId, PaymentError, WithdrawError};
use farthing_rpc::{AmountProblem, ApiError, Shortfall};

use crate::chain::watcher::SyncError;
use crate::cosign::CosignError;
use crate::ops::OpError;
use crate::payments::PayError;
use crate::rpc::RpcHandler;

/// A call the caller's credential does not allow: 1017 for a scope, 1018 for a limit.
pub(super) fn credential_refusal(method: &str, refusal: &farthing_credential::Refusal) -> ApiError {
    use farthing_credential::Refusal;
    let limit = match refusal {
        Refusal::Scope { needed } => {
            return ApiError::ScopeDenied {
                method: method.to_owned(),
                scope: needed.as_str(),
            };
        }
        Refusal::Expired { .. } => {
            return ApiError::CredentialInvalid {
                reason: "expired".into(),
                message: format!("{refusal}: ask its issuer for a new one"),
            };
        }
        Refusal::OverMax { .. } => "max",
        Refusal::Peer => "peer",
        Refusal::Origin => "origin",
    };
    let advice = match refusal {
        Refusal::OverMax { .. } => {
            "pay less, or ask the operator for a credential with a higher max"
        }
        Refusal::Peer => "this credential pays only the partners it names (farthing_whoami)",
        _ => {
            "this credential pays only the origins it names (farthing_whoami); a credential with origins cannot pay directly"
        }
    };
    ApiError::OverLimit {
        limit: limit.into(),
        message: format!("{refusal}: {advice}"),
        frees_at: None,
    }
}

/// A spend over a credential's budget (1018): which budget, and when it frees.
pub(super) fn over_budget(over: &farthing_credential::ledger::OverBudget) -> ApiError {
    let kind = match over.kind {
        farthing_credential::Kind::Pay => "budget",
        farthing_credential::Kind::Deposit => "deposit",
    };
    ApiError::OverLimit {
        limit: format!("{kind}.{}", over.period.as_str()),
        message: over.to_string(),
        frees_at: match over.frees {
            farthing_credential::ledger::Frees::At(t) => Some(t),
            farthing_credential::ledger::Frees::Never => None,
        },
    }
}

impl RpcHandler {
    /// A failed `farthing_pay` on channel `id`.
    pub(super) fn map_pay(&self, id: ChannelId, e: PayError) -> ApiError {
        match e {
            PayError::UnknownChannel(id) => ApiError::UnknownChannel { id },
            PayError::Unpayable(PaymentError::Insufficient {
                available, amount, ..
            }) => ApiError::InsufficientFunds {
                kind: Shortfall::ChannelBalance,
                needed: amount,
                available,
                decimals: self.decimals(),
            },
            PayError::Unpayable(PaymentError::NotOpen { state, .. }) => ApiError::WrongState {
                id,
                state: state.into(),
                call: "pay",
            },
            PayError::Unpayable(PaymentError::Zero) => AmountProblem::Zero.into(),
            PayError::Store(e) => ApiError::Degraded {
                reasons: vec![format!("store: {e}")],
            },
            PayError::Stale(reason) => ApiError::Degraded {
                reasons: vec![reason],
            },
            // Do not pay again: the proof is binding (or, in doubt, may be).
            PayError::Undelivered { channel, nonce } | PayError::InDoubt { channel, nonce, .. } => {
                ApiError::Undelivered {
                    channel_id: channel,
                    nonce,
                }
            }
            PayError::NotReady(id) => ApiError::NotReady {
                id,
                reason: "the partner's node has not confirmed it yet (it waits for its own confirmations); nothing was signed".into(),
            },
            e @ (PayError::KeyReused { .. } | PayError::BadMemo(_)) => {
                ApiError::InvalidParams(e.explain(self.decimals()))
            }
            // Not made (or carried by the next proof): the message says what to do.
            e @ (PayError::NoLink
            | PayError::PartnerRefused(_)
            | PayError::Closing(_)
            | PayError::Unpayable(PaymentError::Exhausted { .. })) => {
                ApiError::PaymentFailed(e.explain(self.decimals()))
            }
            e @ PayError::SignerStopped(_) => {
                tracing::error!(channel = id, "pay: {e}");
                ApiError::Internal(e.to_string())
            }
            PayError::OverBudget(over) => over_budget(&over),
        }
    }

    /// A failed operation (`call` names it).
    pub(super) fn map_op(&self, call: &'static str, e: OpError) -> ApiError {
        match e {
            OpError::UnknownChannel(id) => ApiError::UnknownChannel { id },
            OpError::WrongState { id, state, .. } => ApiError::WrongState {
                id,
                state: state.into(),
                call,
            },
            OpError::InsufficientFunds { needed, available } => ApiError::InsufficientFunds {
                kind: Shortfall::TokenBalance,
                needed,
                available,
                decimals: self.decimals(),
            },
            OpError::InvalidParams(message) => ApiError::InvalidParams(message),
            OpError::Stale(reason) => ApiError::Degraded {
                reasons: vec![reason],
            },
            OpError::Chain(e) => map_chain(call, e),
            OpError::Sync(SyncError::Chain(reason)) => ApiError::ChainUnavailable(reason),
            // Mined: the caller must not send it again, only look again.
            OpError::NotApplied { tx_hash, reason } => ApiError::Unconfirmed {
                tx_hash: tx_hash.to_string(),
                reason,
            },
            OpError::Cosign(e) => self.map_cosign(e),
            OpError::OverBudget(over) => over_budget(&over),
            e @ (OpError::Store(_) | OpError::Sync(SyncError::Store(_))) => ApiError::Degraded {
                reasons: vec![e.to_string()],
            },
        }
    }

    /// A co-signing failure (a withdrawal's; a close falls back to unilateral on its own).
    pub(super) fn map_cosign(&self, e: CosignError) -> ApiError {
        match e {
            CosignError::UnknownChannel(id) => ApiError::UnknownChannel { id },
            CosignError::Refused(WithdrawError::Insufficient { available, amount }) => {
                ApiError::InsufficientFunds {
                    kind: Shortfall::ChannelBalance,
                    needed: amount,
                    available,
                    decimals: self.decimals(),
                }
            }
            CosignError::Refused(refusal) => {
                ApiError::WithdrawFailed(refusal.explain(self.decimals()))
            }
            CosignError::Chain(e) => map_chain("withdraw", e),
            CosignError::Store(e) => ApiError::Degraded {
                reasons: vec![format!("store: {e}")],
            },
            CosignError::Stale(reason) => ApiError::Degraded {
                reasons: vec![reason],
            },
            e @ (CosignError::NoLink
            | CosignError::NoAnswer
            | CosignError::PartnerRefused(_)
            | CosignError::BadCoSignature(_)
            | CosignError::Closing(_)) => ApiError::WithdrawFailed(e.to_string()),
        }
    }
}

/// A chain failure of operation `call`.
fn map_chain(call: &'static str, e: ChainError) -> ApiError {
    match e {
        ChainError::Rpc { reason, .. } => ApiError::ChainUnavailable(reason),
        fee @ ChainError::FeeCap { .. } => ApiError::ChainUnavailable(fee.to_string()),
        ChainError::NoContract { what, address } => {
            ApiError::NoContracts(format!("{what}: no contract at {address}"))
        }
        ChainError::Unconfirmed {
            tx_hash, reason, ..
        } => ApiError::Unconfirmed {
            tx_hash: tx_hash.to_string(),
            reason,
        },
        refused @ (ChainError::Refused { .. } | ChainError::Reverted { .. }) => {
            ApiError::Refused(refused.to_string())
        }
        // Nothing was sent: the store behind the journal fails.
        journal @ ChainError::Journal { .. } => {
            tracing::error!(call, "{journal}");
            ApiError::Degraded {
                reasons: vec![journal.to_string()],
            }
        }
    }
}
