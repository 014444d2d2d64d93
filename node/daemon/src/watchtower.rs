//! The built-in watchtower: it guards the node's user on-chain with no operator action.
//!
//! After every watcher pass (and on every channel change it reports) one guard pass looks at
//! the node's closing channels, by chain time:
//! - a channel closed unilaterally whose on-chain record of the partner's proof is older than
//!   the partner's latest proof we hold (by the contract's rule: more transferred wins, the
//!   nonce breaks ties) gets that proof submitted (`updateProof`) at once — the partner cannot
//!   erase what it paid us. Our own latest proof needs nothing: whatever the partner submitted
//!   of ours can only be lower, which only favours us;
//! - once a channel's challenge period is over, it is settled (paying both sides);
//! - a payout the token refused at settle time (PayoutDeferred) is claimed.
//!
//! It runs after a restart like at any other time: the watcher catches up the events from its
//! cursor and the guard pass acts on what it finds, so a node that was down when the partner
//! closed still answers inside the window. One transaction per (channel, action) is in flight
//! at a time; a failed one is tried again on the next pass. The contract's own checks (made by
//! the chain client's simulation before anything is signed) make a repeat harmless.
//!
//! Warnings (log and `farthing_info`): a stale close still unanswered within
//! `watchtower.margin_secs` of its deadline, and a gas balance too low to defend every
//! channel the node has.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use alloy::providers::Provider;
use farthing_core::{ChainState, Channel, ChannelId, Role};

use crate::node::Node;

/// Gas one channel may need to be defended: a proof update and a settle, with room.
const DEFENCE_GAS_PER_CHANNEL: u128 = 200_000;

/// What the watchtower may do for a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Submit the partner's latest proof we hold.
    Challenge,
    /// Pay out after the challenge period.
    Settle,
    /// Claim what a token refused to pay us.
    Claim,
}

/// What one guard pass found: the actions it called for and the warnings it raised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardPass {
    /// Every `(channel, action)` the pass called for (a claim is channel 0): each was sent
    /// now, or was already in flight (one transaction per channel and action at a time), or —
    /// with `watchtower.act = false` — only logged. Empty: nothing to do on-chain.
    pub actions: Vec<(ChannelId, Action)>,
    /// The node's watchtower warnings after this pass (also in [`Node::warnings`]).
    pub warnings: Vec<String>,
}

/// The watchtower's state: what is in flight, and its warnings.
#[derive(Default)]
pub(crate) struct Watchtower {
    acting: Mutex<HashSet<(ChannelId, Action)>>,
    warnings: Mutex<Vec<String>>,
    /// When a claim was last tried (a token that refuses, e.g. a blacklist, is tried again
    /// every [`CLAIM_RETRY`]).
    claimed_at: Mutex<Option<tokio::time::Instant>>,
}

/// How often a claim the token refused is tried again.
const CLAIM_RETRY: Duration = Duration::from_secs(30);

impl Watchtower {
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Mark `(id, action)` in flight; `false` if it already is.
    fn start(&self, id: ChannelId, action: Action) -> bool {
        self.acting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((id, action))
    }

    fn done(&self, id: ChannelId, action: Action) {
        self.acting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(id, action));
    }
}

/// The partner's proof on-chain is older than the one we hold (the contract's ordering).
pub(crate) fn needs_challenge(channel: &Channel) -> bool {
    let Some(theirs) = &channel.theirs else {
        return false;
    };
    let recorded = match channel.role {
        Role::A => channel.on_chain.proof_b,
        Role::B => channel.on_chain.proof_a,
    };
    theirs.transferred > recorded.1
        || (theirs.transferred == recorded.1 && theirs.nonce > recorded.0)
}

impl Node {
    /// Run guard passes until the node stops: after each change the watcher reports, and at
    /// least every poll interval.
    pub(crate) fn spawn_watchtower(&self) -> tokio::task::JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            let mut changes = node.subscribe();
            let poll = Duration::from_millis(node.config().chain.poll_interval_ms);
            let mut gas_checked: Option<tokio::time::Instant> = None;
            loop {
                if node.is_stopping() {
                    return;
                }
                let check_gas = gas_checked.is_none_or(|t| t.elapsed() > Duration::from_secs(30));
                if let Err(e) = node.guard(check_gas).await {
                    tracing::debug!("watchtower pass: {e}");
                } else if check_gas {
                    gas_checked = Some(tokio::time::Instant::now());
                }
                tokio::select! {
                    _ = changes.recv() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        })
    }

    /// One guard pass: challenge stale closes, settle what may be settled, claim deferred
    /// payouts; refresh the warnings. Returns what the pass called for, so a caller (a test)
    /// can tell "nothing to do" from "not looked yet".
    pub async fn guard(&self, check_gas: bool) -> Result<GuardPass, String> {
        let channels = self.channel_records();
        let closing: Vec<&Channel> = channels
            .iter()
            .filter(|c| c.on_chain.state == ChainState::Closed)
            .collect();
        let mut warnings = Vec::new();
        let mut actions = Vec::new();
        if !closing.is_empty() {
            let now = self
                .reader()
                .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
                .await
                .map_err(|e| e.to_string())?
                .map(|b| b.header.timestamp)
                .unwrap_or_default();
            for channel in closing {
                let recorded_ours = match channel.role {
                    Role::A => channel.on_chain.proof_a.0,
                    Role::B => channel.on_chain.proof_b.0,
                };
                self.check_not_behind(channel.id, recorded_ours, "the chain");
                let deadline = channel.on_chain.settle_after;
                if needs_challenge(channel) && now < deadline {
                    self.act(channel.id, Action::Challenge);
                    actions.push((channel.id, Action::Challenge));
                    let left = deadline.saturating_sub(now);
                    if left <= self.config().watchtower.margin_secs {
                        warnings.push(format!(
                            "channel {}: the partner's stale close is not answered yet and its challenge period ends in {left} s",
                            channel.id
                        ));
                    }
                } else if now >= deadline {
                    self.act(channel.id, Action::Settle);
                    actions.push((channel.id, Action::Settle));
                }
            }
        }
        if self.claim_due() {
            let mut claimed_at = self
                .watchtower()
                .claimed_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if claimed_at.is_none_or(|t| t.elapsed() > CLAIM_RETRY) {
                *claimed_at = Some(tokio::time::Instant::now());
                drop(claimed_at);
                self.act(0, Action::Claim);
                actions.push((0, Action::Claim));
            }
        }
        if check_gas {
            let defended = channels
                .iter()
                .filter(|c| c.on_chain.state != ChainState::Settled)
                .count() as u128;
            if defended > 0 {
                let balance: u128 = self
                    .reader()
                    .get_balance(self.address())
                    .await
                    .map_err(|e| e.to_string())?
                    .saturating_to();
                let price = self
                    .reader()
                    .get_gas_price()
                    .await
                    .map_err(|e| e.to_string())?;
                let needed = defended * DEFENCE_GAS_PER_CHANNEL * price;
                if balance < needed {
                    let warning = format!(
                        "the node's gas balance ({balance} wei) cannot defend its {defended} channels at the current gas price ({needed} wei needed): send ether to {}",
                        self.address()
                    );
                    tracing::warn!("{warning}");
                    warnings.push(warning);
                }
            } else {
                // Nothing to defend: keep no stale gas warning.
            }
        } else {
            // Keep the last gas warning until the next check.
            warnings.extend(
                self.watchtower()
                    .warnings()
                    .into_iter()
                    .filter(|w| w.starts_with("the node's gas balance")),
            );
        }
        for warning in &warnings {
            if !warning.starts_with("the node's gas balance") {
                tracing::warn!("{warning}");
            }
        }
        *self
            .watchtower()
            .warnings
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = warnings.clone();
        Ok(GuardPass { actions, warnings })
    }

    /// Send the action's transaction in the background unless one is in flight.
    fn act(&self, id: ChannelId, action: Action) {
        if !self.config().watchtower.act || !self.watchtower().start(id, action) {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            let outcome = match action {
                Action::Challenge => {
                    let Some(proof) = node.channel_record(id).and_then(|c| c.theirs) else {
                        node.watchtower().done(id, action);
                        return;
                    };
                    tracing::warn!(
                        channel = id,
                        nonce = proof.nonce,
                        "the partner closed with an older state: submitting its latest proof"
                    );
                    node.client().update_proof(id, &proof).await
                }
                Action::Settle => {
                    tracing::info!(channel = id, "challenge period over: settling");
                    node.client().settle(id).await
                }
                Action::Claim => {
                    // Cleared before the claim: a deferral seen meanwhile sets it again.
                    node.set_claim_due(false);
                    match node.claim().await {
                        Ok(claimed) => {
                            if claimed > 0 {
                                tracing::info!(claimed, "claimed a deferred payout");
                            }
                        }
                        Err(e) => {
                            node.set_claim_due(true);
                            tracing::warn!("watchtower: claim: {e}; trying again");
                        }
                    }
                    node.watchtower().done(id, action);
                    return;
                }
            };
            match outcome {
                Ok(outcome) => {
                    tracing::info!(channel = id, ?action, tx = %outcome.tx_hash, "watchtower transaction mined");
                    let _ = node.sync_to(outcome.block).await;
                }
                Err(e) => tracing::warn!(channel = id, ?action, "watchtower: {e}; trying again"),
            }
            node.watchtower().done(id, action);
        });
    }
}
