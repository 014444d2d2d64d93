//! The Farthing node as a library, wired by the `farthing` binary.
//!
//! [`Builder`] turns a [`Config`] into a running [`Node`], a thin façade over components that
//! each hold only the handles they need (node/ARCHITECTURE.md has the picture):
//!
//! - `table`: the channel table — every channel, the one lock, its order written down;
//! - `payments/`: the pay entry point, the signer that puts queued payments into one proof,
//!   idempotency keys, delivery of our proofs, the receiver's checks;
//! - `cosign/`: cooperative close and withdrawal, both sides;
//! - `link/` and `net/`: links to partners (registry, frames, writer) and talking on them
//!   (accept, dial, read and dispatch);
//! - `chain/`: reads, the journaled chain client, the watcher and its reorg rebuild;
//! - `watchtower`, `storeguard`, `ops`: guarding channels on-chain, surviving a failing store,
//!   the on-chain operations;
//! - `observe/`: metrics and payment history; `tasks`: every background task, supervised;
//! - `credentials/`: agents' credentials — the root key, revocations, issued credentials, the
//!   check that admits a token (their budgets are counted in the table);
//! - `rpc/`: the JSON-RPC handler.
//!
//! Every channel rule lives in `farthing-core`; this crate signs, verifies, persists and sends
//! what the core decided. It must never log a key or a password, and never expose a way to
//! sign arbitrary data.

mod builder;
mod chain;
pub mod commerce;
pub mod config;
mod cosign;
mod credentials;

pub use credentials::require_key as require_credential_key;
mod health;
pub mod keys;
mod link;
mod listen;
mod net;
mod node;
mod observe;
mod ops;
pub mod payments;
mod rpc;
mod signer;
mod storeguard;
mod table;
mod tasks;
mod watchtower;

pub use builder::{Builder, StartError};
pub use chain::watcher::{ChannelChange, SyncError};
pub use config::{BuyerConfig, Config, ConfigError, HistoryConfig, KeySource, WatchtowerConfig};
pub use cosign::CosignError;
pub use health::Health;
pub use keys::{KeyError, load_key};
pub use link::kept::PeerStatus;
pub use net::{LinkError, NotReady};
pub use node::Node;
pub use observe::{FeedError, MAX_PAGE, PageQuery, Payment, PaymentFeed, PaymentPage};
pub use ops::OpError;
pub use payments::{NextStep, Paid, PayError, ProofRefusal};
pub use rpc::RpcHandler;
pub use signer::SignatureError;
pub use watchtower::{Action, GuardPass};
