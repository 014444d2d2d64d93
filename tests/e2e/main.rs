//! End-to-end tests against a real anvil devnet and the real contracts. Each test starts its
//! own anvil on a free port; run with `cargo test -p farthing-e2e` after building the contracts
//! (`scripts/test.sh` does everything).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod cli;
mod client;
mod cluster;
mod crash;
mod credentials;
mod credentials_cli;
mod credentials_gateway;
mod daemon;
mod deploy;
mod fees;
mod flood;
mod gateway;
mod history;
mod lifecycle;
mod link;
mod log_range;
mod mcp;
mod node;
mod payments;
mod providers;
mod ready;
mod strangers;
mod testnet;
mod tls;
mod token_domain;
mod watcher;
mod watchtower;
