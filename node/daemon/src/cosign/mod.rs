//! Co-signing with the partner's node: cooperative close ([`close`]) and cooperative
//! withdrawal ([`withdraw`]), each with both sides — asking for the partner's signature, and
//! answering the partner's request. The core decides what may be co-signed
//! (`farthing_core::close`, `farthing_core::withdraw`); this shell signs, verifies, makes the
//! state durable before a signature leaves, and submits the transaction.

pub(crate) mod close;
pub(crate) mod withdraw;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use farthing_chain::ChainError;
use farthing_core::{ChannelId, WithdrawError};
use farthing_store::StoreError;

use crate::chain::Chain;
use crate::chain::watcher::Watcher;
use crate::link::Links;
use crate::payments::{NextStep, Payments};
use crate::signer::{SignatureError, Signer};
use crate::table::{Blocked, ChannelTable};
use crate::tasks::Tasks;

/// How long a request waits for the partner's co-signature (a close then falls back to a
/// unilateral close).
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a cooperative close or withdrawal did not happen, named by what the caller must do.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    /// No channel of the node has this id (fix the request).
    #[error("no channel {0}: list the node's channels to find the id")]
    UnknownChannel(ChannelId),
    /// This node's own rules refuse the withdrawal: amount, balance, state, a pending one
    /// (fix the request, or wait for the pending one).
    #[error(transparent)]
    Refused(#[from] WithdrawError),
    /// No link to the partner: nothing was signed (retry once linked).
    #[error("no link to the channel's partner: connect to it (0xADDRESS@host:port) and retry")]
    NoLink,
    /// The partner did not answer in time. A withdrawal stays pending until its expiry (the
    /// partner may have co-signed); a close can go unilateral (retry later).
    #[error("the partner's node did not answer the request within {} s", ANSWER_TIMEOUT.as_secs())]
    NoAnswer,
    /// The partner's node refused, with its reason.
    #[error("the partner's node refused: {0}")]
    PartnerRefused(String),
    /// The partner's co-signature does not verify: nothing was submitted.
    #[error("the partner's co-signature is invalid: {0}")]
    BadCoSignature(#[from] SignatureError),
    /// The store could not make the request durable: nothing was signed (retry when healthy).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transaction failed or was refused.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A cooperative close was signed: the channel is closing.
    #[error("channel {0} is closing")]
    Closing(ChannelId),
    /// The node's data for the channel is older than the partner's or the chain's.
    #[error("{0}")]
    Stale(String),
}

impl CosignError {
    /// What the caller must do next.
    pub fn next_step(&self) -> NextStep {
        match self {
            Self::UnknownChannel(_) | Self::Refused(_) => NextStep::FixRequest,
            Self::Chain(ChainError::Unconfirmed { .. }) => NextStep::DoNotResend,
            Self::NoLink
            | Self::NoAnswer
            | Self::PartnerRefused(_)
            | Self::BadCoSignature(_)
            | Self::Store(_)
            | Self::Chain(_) => NextStep::Retry,
            Self::Closing(_) | Self::Stale(_) => NextStep::CloseChannel,
        }
    }

    fn blocked(id: ChannelId, blocked: Blocked) -> Self {
        match blocked {
            Blocked::Frozen => Self::Closing(id),
            Blocked::Stale(reason) => Self::Stale(reason),
        }
    }
}

/// The co-signing component.
pub(crate) struct Cosign {
    pub(crate) table: Arc<ChannelTable>,
    pub(crate) signer: Arc<Signer>,
    pub(crate) links: Arc<Links>,
    pub(crate) payments: Arc<Payments>,
    pub(crate) watcher: Arc<Watcher>,
    pub(crate) chain: Arc<Chain>,
    pub(crate) tasks: Tasks,
    /// Refused requests, logged at a bounded rate (a partner can send them in a loop).
    pub(crate) refusals: std::sync::Mutex<crate::observe::RateLimited>,
}

impl Cosign {
    /// Log a refused request of `peer`'s (`what`: "close" or "withdrawal") at most once per
    /// period, with how many were refused since the last line.
    pub(crate) fn log_refusal(&self, what: &str, peer: Address, id: ChannelId, why: &str) {
        let noted = self
            .refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .note();
        if let Some(count) = noted {
            tracing::info!(%peer, channel = id, count, "{what} refused: {why}");
        }
    }
}
