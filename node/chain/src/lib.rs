//! Farthing's view of the chain.
//!
//! - [`contracts`]: alloy bindings of `ChannelManager` and `MockUSDC`, generated at compile
//!   time from forge's artifacts in `contracts/out/` (never from a hand-written ABI);
//! - [`Deployment`]: the deployment file `scripts/deploy.sh` writes, and the start-up check that
//!   the chain behind an RPC URL is the one it describes;
//! - [`events`]: the contract's events in confirmed block ranges, decoded for the watcher.
//!
//! This crate must never hold a private key longer than a call needs it, nor log one.

pub mod contracts;
mod deployment;
pub mod events;
pub mod messages;

pub use deployment::{ChainCheck, Deployment, DeploymentError};
