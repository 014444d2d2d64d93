//! Farthing's channel model and every channel rule, shared by every other crate of the node.
//!
//! - [`amount`]: token amounts as base units, parsed from and shown as decimal strings;
//! - [`limits`]: the contract's numeric limits ([`MAX_DEPOSIT`], `uint96`);
//! - [`channel`]: what the node knows about one channel — its on-chain half as the
//!   `ChannelManager` reports it, and its off-chain half (the latest balance proofs, a pending
//!   withdrawal) — and the balances that follow from it;
//! - [`event`]: the contract's events, how each changes a channel record (idempotently), and
//!   how a change is named ([`ChangeKind`]);
//! - [`payment`]: the off-chain payment rules: what the sender may sign (one proof for a batch
//!   of payments), what the receiver accepts, what a partner's `Sync` and `Ack` mean;
//! - [`withdraw`]: cooperative withdrawal, our request and the partner's, and when a pending
//!   withdrawal ends;
//! - [`close`]: cooperative close, what the node co-signs;
//! - [`watchtower`]: what the watchtower must do for closed channels (challenge, settle), its
//!   warnings, the gas it needs, when to claim a deferred payout;
//! - [`reorg`]: merging a channel record rebuilt after a chain reorganisation.
//!
//! This crate must stay pure: no I/O, no async, no reading of the clock (time is an input,
//! chain time or the machine's, as each rule says), no cryptography (signatures are checked by
//! the caller), so that every rule here can be tested and fuzzed in isolation. The daemon
//! around it reads the chain, the store and the peer links, and carries out what the rules
//! decide.

pub mod amount;
pub mod channel;
pub mod close;
pub mod event;
pub mod limits;
pub mod payment;
pub mod reorg;
pub mod watchtower;
pub mod withdraw;

#[cfg(test)]
mod test_support;

pub use amount::{AmountError, format_amount, parse_amount};
pub use channel::{
    ChainState, Channel, ChannelId, OnChain, PendingWithdrawal, Role, Side, SignedProof,
};
pub use close::{CHAIN_VIEWS_DIFFER, CloseRefusal};
pub use event::{ChainEvent, ChangeKind, apply, change_kind};
pub use limits::MAX_DEPOSIT;
pub use payment::{
    BatchPlan, Holds, PaymentError, Rejection, claimed, plan_batch, plan_batch_admitting,
};
pub use reorg::merge_rebuilt;
pub use watchtower::{
    CLAIM_RETRY_SECS, DEFENCE_GAS_PER_CHANNEL, Duty, GasShortfall, Plan, claim_due_now,
    gas_shortfall, needs_challenge, plan,
};
pub use withdraw::{
    WITHDRAW_EXPIRY_SLACK_SECS, WITHDRAW_VALIDITY_SECS, WithdrawError, WithdrawRefusal,
};
