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

pub mod eventually;
pub mod front;
pub mod market;
pub mod tamper;
pub mod tls;

pub use eventually::{Look, PATIENCE, done_if, eventually, soon};

use std::path::{Path, PathBuf};

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

    /// A node started from a [`NodeCommand`] of the test's own.
    pub fn from_process(process: NodeProcess) -> Self {
        Self {
            url: process.url.clone(),
            peers: process.peers.clone(),
            process,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// SIGKILL: the process dies at once, mid-write or not.
    pub fn kill(self) {
        self.process.kill();
    }

    /// Wait until it exits by itself (it steps down, or fails); its exit status.
    pub fn wait(self) -> std::process::ExitStatus {
        self.process.wait().unwrap()
    }

    /// SIGTERM, and the exit status of a clean shutdown.
    pub fn stop(self) -> std::process::ExitStatus {
        self.process.stop().unwrap()
    }
}

/// A devnet with the contracts deployed and the deployment file written, for tests that run
/// `farthing node` processes ([`Daemon`]); alice (devnet account 1) holds 100 USDC.
pub struct Deployed {
    /// The devnet (its anvil is killed when this is dropped).
    pub devnet: Devnet,
    /// The contracts.
    pub d: Deployment,
    /// Data dirs and the deployment file live here.
    pub dir: tempfile::TempDir,
    /// The deployment file.
    pub deployment: PathBuf,
}

impl Deployed {
    /// A new devnet, the contracts deployed, 100 USDC minted to alice.
    pub async fn start() -> Self {
        let devnet = Devnet::start().unwrap();
        let d = devnet.deploy().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let deployment = dir.path().join("deployment.json");
        std::fs::write(&deployment, serde_json::to_string(&d).unwrap()).unwrap();
        let alice = devnet.key("ALICE").address();
        devnet.mint(&d, alice, 100 * USDC).await.unwrap();
        Self {
            devnet,
            d,
            dir,
            deployment,
        }
    }

    /// The participant with devnet key `name` ("ALICE", "BOB", ...).
    pub fn party(&self, name: &str) -> Party {
        Party::new(&self.devnet, &self.d, self.devnet.key(name))
    }

    /// The data dir named `who`.
    pub fn data_dir(&self, who: &str) -> PathBuf {
        self.dir.path().join(who)
    }

    /// Devnet account `account`'s node, data dir `who`, `extra` node flags.
    pub fn daemon(&self, account: u32, who: &str, extra: &[&str]) -> Daemon {
        Daemon::start_as(
            account,
            &self.data_dir(who),
            &self.devnet.rpc_url,
            &self.deployment,
            extra,
        )
    }

    /// bob's node (devnet account 2) and alice's (account 1, `alice_extra` flags) dialling it,
    /// with a channel from alice to bob funded with `deposit` (token units) that can take
    /// payments both ways: `(alice, bob, channel id)`.
    pub async fn linked_pair(
        &self,
        deposit: &str,
        alice_extra: &[&str],
    ) -> (Daemon, Daemon, farthing_core::ChannelId) {
        use farthing_rpc::FarthingApiClient as _;
        let bob = self.daemon(2, "bob", &[]);
        let link = format!("{}@{}", self.party("BOB").address(), bob.peers);
        let mut extra = vec!["--connect", link.as_str()];
        extra.extend_from_slice(alice_extra);
        let alice = self.daemon(1, "alice", &extra);
        let admin = self.rpc("alice", &alice);
        let opened = admin
            .open_channel(self.party("BOB").address(), deposit.into(), Some(600))
            .await
            .unwrap();
        admin.wait_channel(opened.id, Some(120)).await.unwrap();
        (alice, bob, opened.id)
    }

    /// An HTTP client of `node`, with the token from data dir `who`.
    pub fn rpc(&self, who: &str, node: &Daemon) -> farthing_rpc::HttpClient {
        let token = farthing_rpc::read_token(&self.data_dir(who)).unwrap();
        farthing_rpc::connect_http(&node.url, &token).unwrap()
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

pub use farthing_store::testing::fixed_port;

/// Write `DATA_DIR/farthing.toml` so that the `farthing node` started on `data_dir` has a
/// watchtower that only warns (`watchtower.act = false`): tests that settle and claim through
/// the RPC themselves then see exactly their own transactions, never the watchtower's.
pub fn watchtower_only_warns(data_dir: &Path) {
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(
        data_dir.join("farthing.toml"),
        "[watchtower]\nact = false\n",
    )
    .unwrap();
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
        key: Some(farthing_daemon::KeySource::DevAccount(account)),
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

/// Check acknowledged payments, each `(phase, nonce, base units)`, against the latest proof
/// both nodes agree on, `latest` = (nonce, cumulative units): payments share a nonce only when
/// one proof carried them (so in one phase), the nonces of each phase lie above all earlier
/// phases' (a nonce acknowledged in two phases would be a nonce signed twice with different
/// contents), no acknowledged nonce is above the latest, and the acknowledged units are
/// covered. Panics naming `what`.
pub fn check_acknowledged(acked: &[(u32, u64, u128)], latest: (u64, u128), what: &str) {
    let mut phases: std::collections::BTreeMap<u32, (u64, u64)> = Default::default();
    for &(phase, nonce, _) in acked {
        let range = phases.entry(phase).or_insert((nonce, nonce));
        *range = (range.0.min(nonce), range.1.max(nonce));
    }
    let ranges: Vec<_> = phases.into_iter().collect();
    for pair in ranges.windows(2) {
        assert!(
            pair[0].1.1 < pair[1].1.0,
            "{what}: nonces of phase {} {:?} reach into those of phase {} {:?}",
            pair[0].0,
            pair[0].1,
            pair[1].0,
            pair[1].1
        );
    }
    let top = ranges.last().map(|(_, (_, n))| *n).unwrap_or_default();
    assert!(
        top <= latest.0,
        "{what}: acknowledged nonce {top} is missing (latest {})",
        latest.0
    );
    let paid: u128 = acked.iter().map(|(_, _, u)| u).sum();
    assert!(
        paid <= latest.1,
        "{what}: acknowledged {paid} units, the nodes count {}",
        latest.1
    );
}

/// A token amount as the RPC writes it (6 decimals) in base units.
pub fn base_units(amount: &str) -> u128 {
    farthing_core::parse_amount(amount, 6, u128::MAX).unwrap()
}

/// A payment of `units` base units on channel 1, no key, no memo.
pub fn pay_units(units: u128) -> farthing_rpc::PayParams {
    farthing_rpc::PayParams {
        channel_id: Some(1),
        partner: None,
        amount: farthing_core::format_amount(units, 6),
        idempotency_key: None,
        memo: None,
    }
}
