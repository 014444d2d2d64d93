//! The built-in watchtower: it guards the node's user on-chain with no operator action.
//!
//! After every watcher change and at least every poll interval, one guard pass asks the core
//! what to do ([`farthing_core::watchtower::plan`], by chain time) and does it:
//! - a partner's unilateral close with an older proof of the partner's than the one we hold
//!   gets that proof submitted (`updateProof`) at once;
//! - a channel whose challenge period is over is settled;
//! - a payout the token refused at settle time is claimed (retried every 30 s while refused);
//! - warnings: a stale close near its deadline, a gas balance that cannot defend the channels.
//!
//! It runs after a restart like at any other time: the watcher catches up from its cursor and
//! the pass acts on what it finds, so a node that was down when the partner closed still
//! answers inside the window. One transaction per (channel, duty) is in flight at a time; a
//! failed one is tried again on the next pass. With `watchtower.act = false` it only warns.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use farthing_core::watchtower::{self as rules, Duty};
use farthing_core::{ChainState, ChannelId};

use crate::chain::Chain;
use crate::chain::watcher::Watcher;
use crate::table::ChannelTable;
use crate::tasks::{Shutdown, Tasks};

/// How often the gas balance is checked against the channels to defend.
const GAS_CHECK: Duration = Duration::from_secs(30);

/// What the watchtower does for a channel.
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
    /// The watchtower's warnings after this pass (also in `Node::warnings`).
    pub warnings: Vec<String>,
}

/// The watchtower component.
pub(crate) struct Watchtower {
    pub(crate) table: Arc<ChannelTable>,
    pub(crate) chain: Arc<Chain>,
    pub(crate) watcher: Arc<Watcher>,
    pub(crate) tasks: Tasks,
    /// `watchtower.margin_secs`.
    pub(crate) margin_secs: u64,
    /// `watchtower.act`: send transactions, or only warn.
    pub(crate) act: bool,
    /// How often a pass runs without a change.
    pub(crate) poll: Duration,
    acting: Mutex<HashSet<(ChannelId, Action)>>,
    warnings: Mutex<Vec<String>>,
    /// The last gas warning, kept between checks.
    gas_warning: Mutex<Option<String>>,
    /// When a claim was last tried.
    claimed_at: Mutex<Option<tokio::time::Instant>>,
}

/// Takes an action out of the in-flight set when dropped.
struct InFlight<'a> {
    tower: &'a Watchtower,
    action: (ChannelId, Action),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.tower
            .acting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.action);
    }
}

impl Watchtower {
    /// A watchtower over `table`, acting through `chain`.
    pub(crate) fn new(
        table: Arc<ChannelTable>,
        chain: Arc<Chain>,
        watcher: Arc<Watcher>,
        tasks: Tasks,
        config: &crate::config::WatchtowerConfig,
        poll: Duration,
    ) -> Self {
        Self {
            table,
            chain,
            watcher,
            tasks,
            margin_secs: config.margin_secs,
            act: config.act,
            poll,
            acting: Mutex::default(),
            warnings: Mutex::default(),
            gas_warning: Mutex::default(),
            claimed_at: Mutex::default(),
        }
    }

    /// Run guard passes until shutdown: after each change the watcher reports, and at least
    /// every poll interval.
    pub(crate) async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut changes = self.watcher.subscribe();
        let mut gas_checked: Option<tokio::time::Instant> = None;
        loop {
            let check_gas = gas_checked.is_none_or(|t| t.elapsed() > GAS_CHECK);
            match self.guard(check_gas).await {
                Ok(_) if check_gas => gas_checked = Some(tokio::time::Instant::now()),
                Ok(_) => {}
                Err(e) => tracing::debug!("watchtower pass: {e}"),
            }
            tokio::select! {
                _ = changes.recv() => {}
                () = tokio::time::sleep(self.poll) => {}
                () = shutdown.wait() => return,
            }
        }
    }

    /// The current warnings.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One guard pass: do what the core plans, claim deferred payouts, refresh the warnings.
    /// Returns what the pass called for, so a caller (a test) can tell "nothing to do" from
    /// "not looked yet".
    pub(crate) async fn guard(self: &Arc<Self>, check_gas: bool) -> Result<GuardPass, String> {
        let channels = self.table.all();
        let closing = channels
            .iter()
            .any(|c| c.on_chain.state == ChainState::Closed);
        let mut actions = Vec::new();
        let mut warnings = Vec::new();
        if closing {
            let now = self
                .chain
                .time("watchtower")
                .await
                .map_err(|e| e.to_string())?;
            let plan = rules::plan(&channels, now, self.margin_secs);
            for (id, seen) in plan.stale {
                self.table.note_seen(id, seen, "the chain");
            }
            for duty in plan.duties {
                let action = match duty {
                    Duty::Challenge(id) => (id, Action::Challenge),
                    Duty::Settle(id) => (id, Action::Settle),
                };
                self.start(action);
                actions.push(action);
            }
            warnings = plan.warnings;
        }
        let since_claim = self
            .claimed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|t| t.elapsed().as_secs());
        let due = self.watcher.claim_due();
        if rules::claim_due_now(due, since_claim, rules::CLAIM_RETRY_SECS) {
            *self
                .claimed_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(tokio::time::Instant::now());
            self.start((0, Action::Claim));
            actions.push((0, Action::Claim));
        }
        if check_gas {
            let (balance, price) = self.chain.gas().await.map_err(|e| e.to_string())?;
            let warning = rules::gas_shortfall(&channels, balance, price).map(|short| {
                let warning = short.warning(balance, self.chain.us);
                tracing::warn!("{warning}");
                warning
            });
            *self
                .gas_warning
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = warning;
        }
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        warnings.extend(
            self.gas_warning
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        );
        *self.warnings.lock().unwrap_or_else(PoisonError::into_inner) = warnings.clone();
        Ok(GuardPass { actions, warnings })
    }

    /// Send `action`'s transaction in the background unless one is in flight (or the
    /// watchtower only warns).
    fn start(self: &Arc<Self>, action: (ChannelId, Action)) {
        if !self.act
            || !self
                .acting
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(action)
        {
            return;
        }
        let tower = self.clone();
        self.tasks.spawn("watchtower transaction", async move {
            // Out of flight however the action ends (a panic too), so a later pass retries it.
            let _in_flight = InFlight {
                tower: &tower,
                action,
            };
            tower.perform(action).await;
        });
    }

    async fn perform(&self, (id, action): (ChannelId, Action)) {
        let client = &self.chain.client;
        let outcome = match action {
            Action::Challenge => {
                let Some(proof) = self.table.get(id).and_then(|c| c.theirs) else {
                    return;
                };
                tracing::warn!(
                    channel = id,
                    nonce = proof.nonce,
                    "the partner closed with an older state: submitting its latest proof"
                );
                client.update_proof(id, &proof).await
            }
            Action::Settle => {
                tracing::info!(channel = id, "challenge period over: settling");
                client.settle(id).await
            }
            Action::Claim => {
                // Cleared before the claim: a deferral seen meanwhile sets it again.
                self.watcher.set_claim_due(false);
                match self.chain.claim().await {
                    Ok(claimed) if claimed > 0 => {
                        tracing::info!(claimed, "claimed a deferred payout")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.watcher.set_claim_due(true);
                        tracing::warn!("watchtower: claim: {e}; trying again");
                    }
                }
                return;
            }
        };
        match outcome {
            Ok(outcome) => {
                tracing::info!(channel = id, ?action, tx = %outcome.tx_hash, "watchtower transaction mined");
                let _ = self.watcher.sync_to(outcome.block).await;
            }
            Err(e) => tracing::warn!(channel = id, ?action, "watchtower: {e}; trying again"),
        }
    }
}
