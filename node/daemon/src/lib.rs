//! The Farthing node as a library, wired by the `farthing` binary.
//!
//! - [`config`]: the one `Config` (TOML file, documented defaults that work on the local
//!   devnet, overridden by command-line flags);
//! - [`keys`]: loading the node's secp256k1 key from an Ethereum keystore, a 0600 raw key
//!   file, or a devnet account;
//! - [`Node`]: the running node — key, store, chain check, the watcher that keeps every
//!   channel the node is part of in sync with the chain, and its health.
//!
//! This crate must never log a key or a password, and never expose a way to sign arbitrary
//! data.

pub mod config;
pub mod history;
mod journal;
pub mod keys;
mod link;
mod metrics;
mod node;
mod ops;
mod outbox;
mod payments;
mod rpc;
mod storeguard;
mod watchtower;

pub use config::{Config, ConfigError, KeySource, WatchtowerConfig};
pub use history::Payment;
pub use keys::{KeyError, load_key};
pub use link::{LinkError, Paid};
pub use node::{ChannelChange, Health, Node, StartError, SyncError};
pub use ops::{MAX_DEPOSIT, OpError, WITHDRAW_VALIDITY_SECS};
pub use payments::PayError;
pub use rpc::RpcHandler;
pub use watchtower::{Action, GuardPass};
