//! Farthing's channel model, shared by every other crate of the node.
//!
//! - [`amount`]: token amounts as base units, parsed from and shown as decimal strings;
//! - [`channel`]: what the node knows about one channel — its on-chain half as the
//!   `ChannelManager` reports it, and its off-chain half (the latest balance proofs);
//! - [`event`]: the contract's events and how each changes a channel record (idempotently);
//! - [`payment`]: the off-chain payment rules: what the sender may sign, what the receiver
//!   accepts.
//!
//! This crate must stay pure: no I/O, no async, no reading of the clock (time is an input),
//! so that every rule here can be tested and fuzzed in isolation.

pub mod amount;
pub mod channel;
pub mod event;
pub mod payment;

pub use amount::{AmountError, format_amount, parse_amount};
pub use channel::{ChainState, Channel, ChannelId, OnChain, PendingWithdrawal, Role, SignedProof};
pub use event::{ChainEvent, apply};
pub use payment::{PaymentError, Rejection};
