//! What agents and operators ask of the node on-chain: open, top up, close, settle, withdraw,
//! claim. Each operation checks what it can locally first (unknown channel, wrong state,
//! amount bounds), then sends its transaction, then runs a watcher pass so the answer reflects
//! the chain.

use std::sync::Arc;

use alloy::primitives::Address;
use farthing_chain::{ChainError, TxOutcome};
use farthing_core::{
    ChainState, Channel, ChannelId, MAX_DEPOSIT, WITHDRAW_VALIDITY_SECS, WithdrawError,
};
use farthing_store::{StoreError, Write};

use crate::chain::Chain;
use crate::chain::watcher::{SyncError, Watcher};
use crate::cosign::{Cosign, CosignError};
use crate::payments::{NextStep, Spender};
use crate::table::ChannelTable;
use farthing_credential::Kind;

/// Why an operation failed, named by what the caller must do.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No channel of the node has this id (fix the request).
    #[error("no channel {0}: list the node's channels to find the id")]
    UnknownChannel(ChannelId),
    /// The channel's state does not allow this (fix the request: the hint says what to do).
    #[error("channel {id} is {state:?}: {hint}")]
    WrongState {
        /// Channel id.
        id: ChannelId,
        /// Its state.
        state: ChainState,
        /// What to do instead.
        hint: &'static str,
    },
    /// The node's token balance does not cover the amount (fund the node).
    #[error("the node holds {available} base units of the token, {needed} are needed")]
    InsufficientFunds {
        /// Needed, base units.
        needed: u128,
        /// Held, base units.
        available: u128,
    },
    /// A parameter is invalid (fix the request).
    #[error("{0}")]
    InvalidParams(String),
    /// The chain refused or failed (see [`ChainError`]: retry, or do not resend).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The store failed (retry when the node is healthy).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The watcher pass after the transaction failed; the watcher retries on its own.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The transaction was mined but the node could not apply its block yet (the chain's RPC
    /// failed right after): do not send it again; the watcher applies it on its own.
    #[error(
        "transaction {tx_hash} was mined but the node has not applied it yet ({reason}): do not send it again; the channel shows the outcome once the watcher catches up"
    )]
    NotApplied {
        /// The mined transaction.
        tx_hash: alloy::primitives::B256,
        /// Why the watcher pass failed.
        reason: String,
    },
    /// The node's data for the channel is older than the partner's or the chain's: it will not
    /// act on it (restore the latest data first).
    #[error("{0}")]
    Stale(String),
    /// The partner's node did not co-sign (no link, no answer, or it refused, with its reason).
    #[error("the partner's node did not co-sign: {0}")]
    Cosign(CosignError),
    /// The caller's credential has not this much deposit budget left: nothing was sent.
    #[error(transparent)]
    OverBudget(#[from] farthing_credential::ledger::OverBudget),
}

impl OpError {
    /// What the caller must do next.
    pub fn next_step(&self) -> NextStep {
        match self {
            Self::UnknownChannel(_)
            | Self::WrongState { .. }
            | Self::InsufficientFunds { .. }
            | Self::InvalidParams(_)
            | Self::OverBudget(_) => NextStep::FixRequest,
            Self::Chain(ChainError::Unconfirmed { .. }) | Self::NotApplied { .. } => {
                NextStep::DoNotResend
            }
            Self::Chain(_) | Self::Store(_) | Self::Sync(_) => NextStep::Retry,
            Self::Stale(_) => NextStep::CloseChannel,
            Self::Cosign(e) => e.next_step(),
        }
    }
}

/// The operations component.
pub(crate) struct Operations {
    pub(crate) chain: Arc<Chain>,
    pub(crate) watcher: Arc<Watcher>,
    pub(crate) table: Arc<ChannelTable>,
    pub(crate) cosign: Arc<Cosign>,
    /// `channels.default_challenge_period`.
    pub(crate) default_challenge_period: u32,
}

impl Operations {
    /// One of the node's channels.
    pub(crate) fn channel(&self, id: ChannelId) -> Result<Channel, OpError> {
        self.table.get(id).ok_or(OpError::UnknownChannel(id))
    }

    /// Charge a deposit of `amount` to the deposit budgets of `spender`'s credential, durably,
    /// before the transaction leaves; returns the charge's records ([`Operations::uncharge`]
    /// takes them back). A crash between the charge and the transaction must never let a
    /// restart forget a deposit that was made: the budget errs on the safe side, and is given
    /// back only when the transaction definitely moved nothing.
    async fn charge_deposit(
        &self,
        spender: Option<&Spender>,
        amount: u128,
    ) -> Result<Vec<Write>, OpError> {
        let Some(spender) = spender else {
            return Ok(Vec::new());
        };
        let budgets = &spender.limits().budgets;
        if !budgets.iter().any(|b| b.kind == Kind::Deposit) {
            return Ok(Vec::new());
        }
        let decimals = self.chain.deployment.token_decimals;
        let (charged, durable) = {
            let mut table = self.table.lock();
            let writes = table.charge(
                budgets,
                Kind::Deposit,
                amount,
                crate::credentials::now_secs(),
                decimals,
            )?;
            (writes.clone(), table.commit_writes(writes))
        };
        durable.await?;
        Ok(charged)
    }

    /// A deposit's transaction failed: if it definitely moved nothing (refused before it was
    /// sent, or mined and reverted), give its charge back; otherwise the charge stays — a chain
    /// RPC failure may come before or after the send, and a journal failure may come after the
    /// transaction was mined.
    async fn uncharge<T>(
        &self,
        charged: &[Write],
        amount: u128,
        result: Result<T, OpError>,
    ) -> Result<T, OpError> {
        let nothing_moved = matches!(
            &result,
            Err(OpError::Chain(
                ChainError::Refused { .. }
                    | ChainError::NoContract { .. }
                    | ChainError::FeeCap { .. }
                    | ChainError::Reverted { .. }
            ))
        );
        if nothing_moved && !charged.is_empty() {
            let durable = {
                let mut table = self.table.lock();
                let writes = table.release(charged, amount);
                table.commit_writes(writes)
            };
            if let Err(e) = durable.await {
                tracing::warn!(error = %e, "a deposit that was not made stays charged to its credential's budget (the store refused the release)");
            }
        }
        result
    }

    /// Open a channel to `partner` funded with `amount` base units, in one transaction; a
    /// `spender`'s deposit budgets are charged first.
    pub(crate) async fn open(
        &self,
        partner: Address,
        amount: u128,
        challenge_period: Option<u32>,
        spender: Option<&Spender>,
    ) -> Result<Channel, OpError> {
        let d = &self.chain.deployment;
        if partner == Address::ZERO || partner == self.chain.us {
            return Err(OpError::InvalidParams(format!(
                "partner {partner} is the zero address or this node itself"
            )));
        }
        let period = challenge_period.unwrap_or(self.default_challenge_period);
        if period < d.min_challenge_period || period > d.max_challenge_period {
            return Err(OpError::InvalidParams(format!(
                "challenge period {period} s is outside the contract's bounds [{}, {}]",
                d.min_challenge_period, d.max_challenge_period
            )));
        }
        if amount > MAX_DEPOSIT {
            return Err(OpError::InvalidParams(format!(
                "{} exceeds the contract's deposit limit of {}",
                farthing_core::format_amount(amount, d.token_decimals),
                farthing_core::format_amount(MAX_DEPOSIT, d.token_decimals)
            )));
        }
        self.require_funds(amount).await?;
        let charged = self.charge_deposit(spender, amount).await?;
        let sent = self
            .chain
            .client
            .open_with_permit(&d.token_domain(), partner, amount, period)
            .await
            .map_err(OpError::from);
        let outcome = self.uncharge(&charged, amount, sent).await?;
        self.applied(&outcome).await?;
        let id = outcome.opened.ok_or_else(|| {
            OpError::InvalidParams("the open emitted no ChannelOpened event".into())
        })?;
        self.channel(id)
    }

    /// Raise our deposit in channel `id` by `amount` base units; a `spender`'s deposit budgets
    /// are charged first.
    pub(crate) async fn top_up(
        &self,
        id: ChannelId,
        amount: u128,
        spender: Option<&Spender>,
    ) -> Result<Channel, OpError> {
        let channel = self.open_record(id, "top up only an open channel")?;
        let current = channel.our_chain_side().deposit;
        current
            .checked_add(amount)
            .filter(|t| *t <= MAX_DEPOSIT)
            .ok_or_else(|| {
                OpError::InvalidParams(format!(
                    "a total deposit of {current} + {amount} exceeds the contract's limit"
                ))
            })?;
        self.require_funds(amount).await?;
        let charged = self.charge_deposit(spender, amount).await?;
        let token = self.chain.deployment.token;
        let sent = self
            .chain
            .client
            .top_up(token, id, amount)
            .await
            .map_err(OpError::from);
        let outcome = self.uncharge(&charged, amount, sent).await?;
        self.applied(&outcome).await?;
        self.channel(id)
    }

    /// Close channel `id`: cooperatively when the partner answers (one transaction, paid at
    /// once); otherwise unilaterally with the partner's latest proof. A channel already closed
    /// or settled is answered as it is (like [`Operations::settle`]): a retried close sends
    /// nothing.
    pub(crate) async fn close(&self, id: ChannelId) -> Result<Channel, OpError> {
        let channel = self.channel(id)?;
        if channel.on_chain.state != ChainState::Open {
            return Ok(channel);
        }
        if let Some(reason) = self.table.stale_reason(id) {
            return Err(OpError::Stale(reason));
        }
        let outcome = match self.cosign.close(id).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::info!(
                    channel = id,
                    "cooperative close not possible ({e}); closing unilaterally"
                );
                let channel = self.channel(id)?;
                self.chain.client.close(id, channel.theirs.as_ref()).await?
            }
        };
        self.applied(&outcome).await?;
        self.channel(id)
    }

    /// Settle channel `id` after its challenge period. A channel already settled (the
    /// watchtower settles on its own once it may) is answered as it is.
    pub(crate) async fn settle(&self, id: ChannelId) -> Result<Channel, OpError> {
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
        let now = self.chain.time("settle").await?;
        if now < channel.on_chain.settle_after {
            return Err(OpError::WrongState {
                id,
                state: channel.on_chain.state,
                hint: "its challenge period is still running; settle once settle_after has passed",
            });
        }
        let outcome = match self.chain.client.settle(id).await {
            Ok(outcome) => outcome,
            Err(e @ (ChainError::Refused { .. } | ChainError::Reverted { .. })) => {
                // Someone (our watchtower, the partner) may have just settled it.
                self.watcher.sync().await?;
                let channel = self.channel(id)?;
                if channel.on_chain.state == ChainState::Settled {
                    return Ok(channel);
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        self.applied(&outcome).await?;
        self.channel(id)
    }

    /// Withdraw `amount` base units of our balance from open channel `id` to the node's
    /// address, co-signed by the partner's node over the link; one transaction.
    pub(crate) async fn withdraw(&self, id: ChannelId, amount: u128) -> Result<Channel, OpError> {
        self.open_record(id, "withdraw only from an open channel; closing pays out")?;
        if amount == 0 {
            return Err(OpError::InvalidParams(
                "a withdrawal must be positive".into(),
            ));
        }
        let expiry = self.chain.time("withdraw").await? + WITHDRAW_VALIDITY_SECS;
        let outcome = self
            .cosign
            .withdraw(id, amount, expiry)
            .await
            .map_err(|e| match e {
                CosignError::Chain(e) => OpError::Chain(e),
                CosignError::Store(e) => OpError::Store(e),
                // It closed meanwhile.
                CosignError::Refused(WithdrawError::NotOpen { state }) => OpError::WrongState {
                    id,
                    state,
                    hint: "withdraw only from an open channel; closing pays out",
                },
                e => OpError::Cosign(e),
            })?;
        self.applied(&outcome).await?;
        self.channel(id)
    }

    /// Apply the events of `outcome`'s block, so the answer reflects the operation's own
    /// transaction. The transaction is mined whatever happens here: a failure says so, and
    /// that it must not be sent again.
    async fn applied(&self, outcome: &TxOutcome) -> Result<(), OpError> {
        self.watcher
            .sync_to(outcome.block)
            .await
            .map_err(|e| OpError::NotApplied {
                tx_hash: outcome.tx_hash,
                reason: e.to_string(),
            })
    }

    /// Claim whatever the token refused to pay the node at settle time; returns the amount.
    pub(crate) async fn claim(&self) -> Result<u128, OpError> {
        Ok(self.chain.claim().await?)
    }

    fn open_record(&self, id: ChannelId, hint: &'static str) -> Result<Channel, OpError> {
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
        let available = self.chain.token_balance().await?;
        if available < amount {
            return Err(OpError::InsufficientFunds {
                needed: amount,
                available,
            });
        }
        Ok(())
    }
}
