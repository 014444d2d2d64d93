//! What agents and operators ask of the node, as plain methods on [`Node`]; the RPC server
//! maps them one to one. Each operation checks what it can locally first (unknown channel,
//! wrong state, amount bounds), then sends its transaction, then runs a watcher pass so the
//! answer reflects the chain.

use alloy::primitives::Address;
use alloy::providers::Provider;
use farthing_chain::ChainError;
use farthing_chain::contracts::MockUSDC;
use farthing_core::{ChainState, Channel, ChannelId};
use farthing_store::StoreError;

use crate::node::{Node, SyncError};

/// Largest deposit the contract stores (uint96).
pub const MAX_DEPOSIT: u128 = (1u128 << 96) - 1;

/// Why an operation failed, by what the caller must do.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No channel of the node has this id.
    #[error("no channel {0}: list the node's channels to find the id")]
    UnknownChannel(ChannelId),
    /// The channel's state does not allow this.
    #[error("channel {id} is {state:?}: {hint}")]
    WrongState {
        /// Channel id.
        id: ChannelId,
        /// Its state.
        state: ChainState,
        /// What to do instead.
        hint: &'static str,
    },
    /// The node's token balance does not cover the amount.
    #[error("the node holds {available} base units of the token, {needed} are needed")]
    InsufficientFunds {
        /// Needed, base units.
        needed: u128,
        /// Held, base units.
        available: u128,
    },
    /// A parameter is invalid.
    #[error("{0}")]
    InvalidParams(String),
    /// The chain refused or failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The watcher pass after the transaction failed (the watcher retries on its own).
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The node's data for the channel is older than what the partner or the chain holds: it
    /// will not act on it.
    #[error("{0}")]
    Stale(String),
    /// The partner's node did not co-sign (no link, no answer, or it refused, with its reason).
    #[error("the partner's node did not co-sign: {0}")]
    Partner(crate::payments::PayError),
}

/// How long a co-signed withdrawal stays valid (chain time): the node submits it at once, and
/// both sides hold the amount back until it executes or this passes.
pub const WITHDRAW_VALIDITY_SECS: u64 = 900;

impl Node {
    /// Open a channel to `partner` funded with `amount` base units, in one transaction.
    pub async fn open_channel(
        &self,
        partner: Address,
        amount: u128,
        challenge_period: Option<u32>,
    ) -> Result<Channel, OpError> {
        let d = self.deployment();
        if partner == Address::ZERO || partner == self.address() {
            return Err(OpError::InvalidParams(format!(
                "partner {partner} is the zero address or this node itself"
            )));
        }
        let period = challenge_period.unwrap_or(self.config().channels.default_challenge_period);
        if period < d.min_challenge_period || period > d.max_challenge_period {
            return Err(OpError::InvalidParams(format!(
                "challenge period {period} s is outside the contract's bounds [{}, {}]",
                d.min_challenge_period, d.max_challenge_period
            )));
        }
        if amount > MAX_DEPOSIT {
            return Err(OpError::InvalidParams(format!(
                "{amount} base units exceed the contract's deposit limit"
            )));
        }
        self.require_funds(amount).await?;
        let outcome = self
            .client()
            .open_with_permit(self.key(), d.token, partner, amount, period)
            .await?;
        self.sync_to(outcome.block).await?;
        let id = outcome.opened.ok_or_else(|| {
            OpError::InvalidParams("the open emitted no ChannelOpened event".into())
        })?;
        self.channel(id)
    }

    /// Raise our deposit in channel `id` by `amount` base units.
    pub async fn top_up(&self, id: ChannelId, amount: u128) -> Result<Channel, OpError> {
        let channel = self.open_channel_record(id, "top up only an open channel")?;
        let current = match channel.role {
            farthing_core::Role::A => channel.on_chain.deposit_a,
            farthing_core::Role::B => channel.on_chain.deposit_b,
        };
        current
            .checked_add(amount)
            .filter(|t| *t <= MAX_DEPOSIT)
            .ok_or_else(|| {
                OpError::InvalidParams(format!(
                    "a total deposit of {current} + {amount} exceeds the contract's limit"
                ))
            })?;
        self.require_funds(amount).await?;
        let outcome = self
            .client()
            .top_up(self.deployment().token, id, amount)
            .await?;
        self.sync_to(outcome.block).await?;
        self.channel(id)
    }

    /// Close channel `id` unilaterally with the partner's latest proof (the cooperative path
    /// needs the peer link, which comes with payments).
    pub async fn close_channel(&self, id: ChannelId) -> Result<Channel, OpError> {
        self.open_channel_record(
            id,
            "it is already closing; settle after its challenge period",
        )?;
        if let Some(reason) = self.stale_reason(id) {
            return Err(OpError::Stale(reason));
        }
        // Cooperatively when the partner answers (one transaction, paid at once); otherwise
        // unilaterally with the partner's latest proof.
        let outcome = match self.close_cooperatively(id).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::info!(
                    channel = id,
                    "cooperative close not possible ({e}); closing unilaterally"
                );
                let channel = self.channel(id)?;
                self.client().close(id, channel.theirs.as_ref()).await?
            }
        };
        self.sync_to(outcome.block).await?;
        self.channel(id)
    }

    /// Settle channel `id` after its challenge period. A channel already settled (the
    /// watchtower settles on its own once it may) is answered as it is.
    pub async fn settle_channel(&self, id: ChannelId) -> Result<Channel, OpError> {
        let channel = self.channel(id)?;
        if channel.on_chain.state == ChainState::Settled {
            return Ok(channel);
        }
        if channel.on_chain.state != ChainState::Closed {
            return Err(OpError::WrongState {
                id,
                state: channel.on_chain.state,
                hint: "only a unilaterally closed channel is settled; close it first",
            });
        }
        let now = self.chain_time("settle").await?;
        if now < channel.on_chain.settle_after {
            return Err(OpError::WrongState {
                id,
                state: channel.on_chain.state,
                hint: "its challenge period is still running; settle once settle_after has passed",
            });
        }
        let outcome = match self.client().settle(id).await {
            Ok(outcome) => outcome,
            Err(e @ (ChainError::Refused { .. } | ChainError::Reverted { .. })) => {
                // Someone (our watchtower, the partner) may have just settled it.
                self.sync().await?;
                let channel = self.channel(id)?;
                if channel.on_chain.state == ChainState::Settled {
                    return Ok(channel);
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        self.sync_to(outcome.block).await?;
        self.channel(id)
    }

    /// Withdraw `amount` base units of our balance from open channel `id` to the node's
    /// address, co-signed by the partner's node over the link; one transaction.
    pub async fn withdraw(&self, id: ChannelId, amount: u128) -> Result<Channel, OpError> {
        self.open_channel_record(id, "withdraw only from an open channel; closing pays out")?;
        if amount == 0 {
            return Err(OpError::InvalidParams(
                "a withdrawal must be positive".into(),
            ));
        }
        let expiry = self.chain_time("withdraw").await? + WITHDRAW_VALIDITY_SECS;
        let outcome = self
            .withdraw_cooperatively(id, amount, expiry)
            .await
            .map_err(|e| match e {
                crate::payments::PayError::Chain(e) => OpError::Chain(e),
                crate::payments::PayError::Store(e) => OpError::Store(e),
                e => OpError::Partner(e),
            })?;
        self.sync_to(outcome.block).await?;
        self.channel(id)
    }

    /// The chain's time: the latest block's timestamp.
    async fn chain_time(&self, what: &'static str) -> Result<u64, OpError> {
        Ok(self
            .reader()
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| ChainError::Rpc {
                what,
                reason: e.to_string(),
            })?
            .map(|b| b.header.timestamp)
            .unwrap_or_default())
    }

    /// Claim whatever the token refused to pay the node at settle time; returns the amount.
    pub async fn claim(&self) -> Result<u128, OpError> {
        let d = self.deployment();
        let manager =
            farthing_chain::contracts::ChannelManager::new(d.channel_manager, self.reader());
        let claimable: u128 = manager
            .claimable(d.token, self.address())
            .call()
            .await
            .map_err(|e| ChainError::Rpc {
                what: "claimable",
                reason: e.to_string(),
            })?
            .saturating_to();
        if claimable > 0 {
            self.client().claim(d.token, self.address()).await?;
        }
        Ok(claimable)
    }

    /// One of the node's channels.
    pub fn channel(&self, id: ChannelId) -> Result<Channel, OpError> {
        self.channel_record(id).ok_or(OpError::UnknownChannel(id))
    }

    /// The node's token balance, in base units.
    pub async fn token_balance(&self) -> Result<u128, OpError> {
        let token = MockUSDC::new(self.deployment().token, self.reader());
        let balance =
            token
                .balanceOf(self.address())
                .call()
                .await
                .map_err(|e| ChainError::Rpc {
                    what: "balance",
                    reason: e.to_string(),
                })?;
        Ok(balance.saturating_to())
    }

    fn open_channel_record(&self, id: ChannelId, hint: &'static str) -> Result<Channel, OpError> {
        let channel = self.channel(id)?;
        if channel.on_chain.state != ChainState::Open {
            return Err(OpError::WrongState {
                id,
                state: channel.on_chain.state,
                hint,
            });
        }
        Ok(channel)
    }

    async fn require_funds(&self, amount: u128) -> Result<(), OpError> {
        let available = self.token_balance().await?;
        if available < amount {
            return Err(OpError::InsufficientFunds {
                needed: amount,
                available,
            });
        }
        Ok(())
    }
}
