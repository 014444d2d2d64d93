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
//! - [`rpc`]: every connection to the chain's RPC (TLS on ring with the system's roots and
//!   an optional private CA, rate-limit retries, a request timeout, errors in one line).
//!
//! - [`NodeKey`]: the node's key, held once and shared (the chain client and the payment
//!   signer use the same handle), wiped on drop.
//!
//! This crate must never log a key, copy the node's key out of its [`NodeKey`], or sign
//! arbitrary data handed in from outside.

mod client;
pub mod contracts;
mod deployment;
pub mod events;
pub mod fast;
mod key;
pub mod messages;
pub mod rpc;

pub use client::{
    ChainClient, ChainError, OpenAuthorization, RECEIPT_TIMEOUT, SentTx, TxJournal, TxOutcome,
    URGENT_BUMPS, URGENT_WAIT, redact_url,
};
pub use deployment::{
    ChainCheck, ChainTokenDomain, Deployment, DeploymentError, read_token_domain,
};
pub use key::NodeKey;
