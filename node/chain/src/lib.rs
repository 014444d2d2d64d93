//! Farthing's view of the chain.
//!
//! - [`contracts`]: alloy bindings of `ChannelManager` and `MockUSDC`, generated at compile
//!   time from forge's artifacts in `contracts/out/` (never from a hand-written ABI);
//! - [`Deployment`]: the deployment file `scripts/deploy.sh` writes, and the start-up check that
//!   the chain behind an RPC URL is the one it describes;
//! - [`events`]: the contract's events in confirmed block ranges, decoded for the watcher;
//! - [`ChainClient`]: the node's transactions, with nonces handed out locally (concurrent
//!   operations never collide, a failed send resynchronises) and receipts awaited with the
//!   configured confirmations.
//!
//! This crate must never hold a private key longer than a call needs it, nor log one.

mod client;
pub mod contracts;
mod deployment;
pub mod events;
pub mod fast;
pub mod messages;

pub use client::{
    ChainClient, ChainError, OpenAuthorization, RECEIPT_TIMEOUT, SentTx, TxJournal, TxOutcome,
    URGENT_BUMPS, URGENT_WAIT, redact_url,
};
pub use deployment::{ChainCheck, Deployment, DeploymentError};
