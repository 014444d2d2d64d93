//! Reading the `ChannelManager`'s events from the chain in confirmed block ranges, decoded into
//! the node's [`ChainEvent`]s. Applying them (idempotently) is `farthing_core::apply`; keeping
//! the cursor is the store's job.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEventInterface;
use farthing_core::{ChainEvent, ChannelId};

use crate::contracts::ChannelManager::ChannelManagerEvents as Raw;

/// A decoded event and where it was mined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Block number.
    pub block: u64,
    /// Block hash (to notice reorgs).
    pub block_hash: B256,
    /// Position of the log in its block.
    pub log_index: u64,
    /// The transaction that emitted it.
    pub tx_hash: B256,
    /// What happened.
    pub event: ChainEvent,
}

/// Why events could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The chain RPC failed.
    #[error("chain RPC: {0} (the node retries; check the chain's RPC if this persists)")]
    Rpc(String),
    /// A log from the contract did not decode (a contract that is not Farthing's?).
    #[error("undecodable log {tx_hash}#{log_index} from the ChannelManager: {reason}")]
    Decode {
        /// Transaction of the log.
        tx_hash: B256,
        /// Index of the log.
        log_index: u64,
        /// What failed.
        reason: String,
    },
    /// The node cannot place a log (a pending log without block number).
    #[error("log without block position from the RPC: is it serving pending logs?")]
    Unpositioned,
}

/// A channel as the contract holds it at some block: who it joins, in which token, and its
/// on-chain half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractChannel {
    /// Participant A (the opener).
    pub a: Address,
    /// Participant B.
    pub b: Address,
    /// The ERC-20 it holds.
    pub token: Address,
    /// Its on-chain state.
    pub on_chain: farthing_core::OnChain,
}

/// The widest block range one `eth_getLogs` asks for, until a provider refuses it.
pub const MAX_LOG_RANGE: u64 = 5_000;
/// After this many `eth_getLogs` answered in a row, the range is doubled again (up to
/// [`MAX_LOG_RANGE`]): a range halved during an outage recovers, and one halved below a
/// provider's cap costs one refused request per this many.
const GROW_AFTER: u32 = 64;

/// Reads the events of one `ChannelManager`.
#[derive(Debug, Clone)]
pub struct EventSource<P> {
    provider: P,
    manager: Address,
    confirmations: u64,
    range: Arc<LogRange>,
}

/// The block range of one `eth_getLogs`, shared by every clone of an [`EventSource`].
///
/// Providers cap it (Infura 10,000 blocks, Alchemy 500 or less, Erigon 1,000, QuickNode 10,000
/// over HTTP 413), each with its own error code and text. So the text is never matched: any
/// failed `eth_getLogs` over more than one block halves the range (sticky), down to one block,
/// where the error is reported.
#[derive(Debug)]
pub struct LogRange {
    max: AtomicU64,
    successes: AtomicU32,
}

impl Default for LogRange {
    fn default() -> Self {
        Self::new(MAX_LOG_RANGE)
    }
}

impl LogRange {
    fn new(max: u64) -> Self {
        Self {
            max: AtomicU64::new(max.max(1)),
            successes: AtomicU32::new(0),
        }
    }

    fn get(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// A request over `len` blocks failed: the range to retry with, if any.
    fn refused(&self, len: u64) -> Option<u64> {
        self.successes.store(0, Ordering::Relaxed);
        if len <= 1 {
            return None;
        }
        let halved = len / 2;
        let before = self.max.fetch_min(halved, Ordering::Relaxed);
        Some(before.min(halved))
    }

    fn answered(&self) {
        if self.successes.fetch_add(1, Ordering::Relaxed) + 1 >= GROW_AFTER {
            self.successes.store(0, Ordering::Relaxed);
            let max = self.get();
            if max < MAX_LOG_RANGE {
                self.max
                    .store((max * 2).min(MAX_LOG_RANGE), Ordering::Relaxed);
            }
        }
    }
}

impl<P: Provider> EventSource<P> {
    /// Events of the `ChannelManager` at `manager`; a block counts once it has `confirmations`
    /// blocks including itself (0 and 1 both mean "mined").
    pub fn new(provider: P, manager: Address, confirmations: u64) -> Self {
        Self {
            provider,
            manager,
            confirmations,
            range: Arc::new(LogRange::new(MAX_LOG_RANGE)),
        }
    }

    /// Share `range` (kept by a caller that makes a source per pass, so that a halving sticks).
    pub fn with_range(mut self, range: Arc<LogRange>) -> Self {
        self.range = range;
        self
    }

    /// The widest range one `eth_getLogs` asks for now.
    pub fn max_range(&self) -> u64 {
        self.range.get()
    }

    /// The newest block with enough confirmations, if the chain is long enough.
    pub async fn confirmed_head(&self) -> Result<Option<u64>, EventError> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(|e| EventError::Rpc(e.to_string()))?;
        Ok(head
            .saturating_add(1)
            .checked_sub(self.confirmations.max(1)))
    }

    /// The contract's record of channel `id` as of block `block` (`None` if no such channel
    /// exists there): the authority when the node rebuilds after a reorg.
    pub async fn channel_at(
        &self,
        id: ChannelId,
        block: u64,
    ) -> Result<Option<ContractChannel>, EventError> {
        let manager = crate::contracts::ChannelManager::new(self.manager, &self.provider);
        let info = manager
            .getChannel(U256::from(id))
            .block(block.into())
            .call()
            .await
            .map_err(|e| EventError::Rpc(e.to_string()))?;
        let state = match info.state {
            1 => farthing_core::ChainState::Open,
            2 => farthing_core::ChainState::Closed,
            3 => farthing_core::ChainState::Settled,
            _ => return Ok(None),
        };
        Ok(Some(ContractChannel {
            a: info.participantA,
            b: info.participantB,
            token: info.token,
            on_chain: farthing_core::OnChain {
                state,
                deposit_a: info.depositA.to(),
                deposit_b: info.depositB.to(),
                withdrawn_a: info.withdrawnA.to(),
                withdrawn_b: info.withdrawnB.to(),
                settle_after: info.settleAfter.to(),
                closer: (info.closer != Address::ZERO).then_some(info.closer),
                proof_a: (info.nonceA, info.transferredA),
                proof_b: (info.nonceB, info.transferredB),
            },
        }))
    }

    /// The events mined in blocks `from..=to`, in chain order. Large ranges are read in
    /// chunks; a chunk the provider refuses is read again in halves (see [`LogRange`]).
    pub async fn events(&self, from: u64, to: u64) -> Result<Vec<Observed>, EventError> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(self.range.get() - 1));
            let filter = Filter::new()
                .address(self.manager)
                .from_block(start)
                .to_block(end);
            let logs = match self.provider.get_logs(&filter).await {
                Ok(logs) => {
                    self.range.answered();
                    logs
                }
                Err(e) => {
                    let len = end - start + 1;
                    let Some(range) = self.range.refused(len) else {
                        return Err(EventError::Rpc(e.to_string()));
                    };
                    tracing::warn!(
                        from = start,
                        to = end,
                        error = %e,
                        "eth_getLogs over {len} blocks failed: reading at most {range} blocks at a time from now on"
                    );
                    continue;
                }
            };
            for log in &logs {
                if let Some(observed) = decode(log)? {
                    out.push(observed);
                }
            }
            start = end + 1;
        }
        out.sort_by_key(|o| (o.block, o.log_index));
        Ok(out)
    }
}

/// Decode one log of the `ChannelManager`; `Ok(None)` for events the node does not follow
/// (`Claimed` concerns an owner, not a channel).
pub fn decode(log: &Log) -> Result<Option<Observed>, EventError> {
    let (Some(block), Some(block_hash), Some(log_index), Some(tx_hash)) = (
        log.block_number,
        log.block_hash,
        log.log_index,
        log.transaction_hash,
    ) else {
        return Err(EventError::Unpositioned);
    };
    let fail = |reason: String| EventError::Decode {
        tx_hash,
        log_index,
        reason,
    };
    let raw = Raw::decode_log(&log.inner)
        .map_err(|e| fail(e.to_string()))?
        .data;
    let id = |v: U256| -> Result<ChannelId, EventError> {
        u64::try_from(v).map_err(|_| fail(format!("channel id {v} beyond u64")))
    };
    let amount = |v: U256| -> Result<u128, EventError> {
        u128::try_from(v).map_err(|_| fail(format!("amount {v} beyond u128")))
    };
    let event = match raw {
        Raw::ChannelOpened(e) => ChainEvent::Opened {
            id: id(e.channelId)?,
            a: e.participantA,
            b: e.participantB,
            token: e.token,
            deposit_a: amount(e.depositA)?,
            challenge_period: e.challengePeriod,
        },
        Raw::Deposited(e) => ChainEvent::Deposited {
            id: id(e.channelId)?,
            participant: e.participant,
            total: amount(e.totalDeposit)?,
        },
        Raw::Withdrawn(e) => ChainEvent::Withdrawn {
            id: id(e.channelId)?,
            participant: e.participant,
            total: amount(e.totalWithdrawn)?,
        },
        Raw::ChannelClosed(e) => ChainEvent::Closed {
            id: id(e.channelId)?,
            closer: e.closer,
            settle_after: e.settleAfter.to(),
            partner_nonce: e.partnerNonce,
            partner_transferred: e.partnerTransferred,
        },
        Raw::BalanceProofUpdated(e) => ChainEvent::ProofUpdated {
            id: id(e.channelId)?,
            signer: e.participant,
            nonce: e.nonce,
            transferred: e.transferred,
        },
        Raw::ChannelSettled(e) => ChainEvent::Settled {
            id: id(e.channelId)?,
            payout_a: amount(e.payoutA)?,
            payout_b: amount(e.payoutB)?,
            cooperative: e.cooperative,
        },
        Raw::PayoutDeferred(e) => ChainEvent::PayoutDeferred {
            id: id(e.channelId)?,
            token: e.token,
            owner: e.owner,
            amount: amount(e.amount)?,
        },
        Raw::Claimed(_) => return Ok(None),
        other => return Err(fail(format!("unexpected event {other:?}"))),
    };
    Ok(Some(Observed {
        block,
        block_hash,
        log_index,
        tx_hash,
        event,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_range_halves_sticks_and_stops_at_one_block() {
        let range = LogRange::new(MAX_LOG_RANGE);
        assert_eq!(range.refused(5_000), Some(2_500));
        assert_eq!(range.refused(2_500), Some(1_250));
        assert_eq!(range.get(), 1_250, "sticky");
        // A short chunk (the end of a range) that fails halves from its own length.
        assert_eq!(range.refused(7), Some(3));
        assert_eq!(range.get(), 3);
        // A wider chunk read before the halving does not widen the range back.
        assert_eq!(range.refused(1_000), Some(3));
        assert_eq!(range.refused(3), Some(1));
        assert_eq!(range.refused(1), None, "one block: the error is reported");
        assert_eq!(range.get(), 1);
    }

    #[test]
    fn the_range_doubles_again_after_a_run_of_answers_up_to_the_maximum() {
        let range = LogRange::new(MAX_LOG_RANGE);
        range.refused(5_000);
        range.refused(2_500);
        range.refused(1_250);
        assert_eq!(range.get(), 625);
        for _ in 0..GROW_AFTER - 1 {
            range.answered();
        }
        assert_eq!(range.get(), 625);
        range.answered();
        assert_eq!(range.get(), 1_250);
        // A refusal resets the run.
        for _ in 0..GROW_AFTER - 1 {
            range.answered();
        }
        range.refused(1_250);
        assert_eq!(range.get(), 625);
        for _ in 0..GROW_AFTER - 1 {
            range.answered();
        }
        assert_eq!(range.get(), 625);
        for _ in 0..GROW_AFTER * 10 {
            range.answered();
        }
        assert_eq!(range.get(), MAX_LOG_RANGE);
    }
}
