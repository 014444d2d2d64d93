//! Harness for Farthing's end-to-end tests. The devnet itself — a real anvil on a free port
//! configured from `anvil-config/devnet.env`, the real contracts deployed through the generated
//! bindings, `farthing node` child processes — is `farthing-devnet` (node/devnet), shared with
//! `farthing bench` and re-exported here; this crate adds what only the tests need: the
//! `farthing` binary next to the test binary, participants bound to the contracts, in-process
//! node configs, waiting helpers.
//!
//! Every [`Devnet`] is its own anvil process (port 0: the OS picks a free port, so tests run
//! in parallel), killed when the value is dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use farthing_chain::Deployment;
use farthing_chain::contracts::{ChannelManager, MockUSDC};
pub use farthing_devnet::{Devnet, DevnetOptions, DevnetParams, NodeCommand, NodeProcess, USDC};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The `farthing` binary next to this test binary (`cargo build -p farthing`; `cargo test` alone
/// does not build it, scripts/test.sh does).
pub fn farthing_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("farthing");
    assert!(
        bin.exists(),
        "{} is missing: cargo build -p farthing (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// The real `farthing node` (from [`farthing_bin`]) as a child process, its log on the test's
/// stderr; killed when dropped.
pub struct Daemon {
    process: NodeProcess,
    /// Its RPC, `http://HOST:PORT`.
    pub url: String,
    /// Where it listens for partner nodes.
    pub peers: String,
}

impl Daemon {
    /// Devnet account 1's node.
    pub fn start(data_dir: &Path, rpc_url: &str, deployment: &Path) -> Self {
        Self::start_as(1, data_dir, rpc_url, deployment, &[])
    }

    /// Devnet account `account` as the node's key, `extra` node flags.
    pub fn start_as(
        account: u32,
        data_dir: &Path,
        rpc_url: &str,
        deployment: &Path,
        extra: &[&str],
    ) -> Self {
        let process = NodeCommand::new(&farthing_bin(), account, data_dir, rpc_url, deployment)
            .args(extra)
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            url: process.url.clone(),
            peers: process.peers.clone(),
            process,
        }
    }

    /// SIGKILL: the process dies at once, mid-write or not.
    pub fn kill(self) {
        self.process.kill();
    }

    /// SIGTERM, and the exit status of a clean shutdown.
    pub fn stop(self) -> std::process::ExitStatus {
        self.process.stop().unwrap()
    }
}

/// One participant: its key and the contracts bound to a provider that signs as it.
pub struct Party {
    /// The participant's key.
    pub key: PrivateKeySigner,
    /// ChannelManager, sending as this participant.
    pub manager: ChannelManager::ChannelManagerInstance<DynProvider>,
    /// The token (MockUSDC ABI, also fits a plain ERC-20), sending as this participant.
    pub token: MockUSDC::MockUSDCInstance<DynProvider>,
}

impl Party {
    /// Bind `key` to the deployment's contracts on `devnet`.
    pub fn new(devnet: &Devnet, d: &Deployment, key: PrivateKeySigner) -> Self {
        let provider = devnet.provider(&key);
        Self {
            manager: ChannelManager::new(d.channel_manager, provider.clone()),
            token: MockUSDC::new(d.token, provider),
            key,
        }
    }

    /// The participant's address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Its token balance in base units.
    pub async fn balance(&self) -> u64 {
        self.token
            .balanceOf(self.address())
            .call()
            .await
            .unwrap()
            .to()
    }
}

/// Wait (up to 6 s) until `check` holds; panic naming `what` otherwise.
pub async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A node's config for `devnet` and deployment `d`: devnet account `account`'s key, data in
/// `dir/node<account>`, the deployment file written to `dir`, a fast watcher.
pub fn node_config(
    devnet: &Devnet,
    d: &Deployment,
    dir: &Path,
    account: u32,
) -> farthing_daemon::Config {
    let deployment = dir.join("deployment.json");
    std::fs::write(&deployment, serde_json::to_string(d).unwrap()).unwrap();
    let mut config = farthing_daemon::Config {
        data_dir: dir.join(format!("node{account}")),
        key: farthing_daemon::KeySource::DevAccount(account),
        ..Default::default()
    };
    config.chain.rpc_url = devnet.rpc_url.clone();
    config.chain.deployment = deployment;
    config.chain.poll_interval_ms = 20;
    config
}

/// Send a contract call and wait for its receipt, panicking (in tests) if it reverts.
#[macro_export]
macro_rules! send {
    ($call:expr) => {{
        let receipt = $call.send().await.unwrap().get_receipt().await.unwrap();
        assert!(
            receipt.status(),
            "transaction reverted: {}",
            stringify!($call)
        );
        receipt
    }};
}
