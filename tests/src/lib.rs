//! Harness for Farthing's end-to-end tests: a real anvil on a free port, configured from
//! `anvil-config/devnet.env`, and the real contracts deployed through the generated bindings.
//!
//! Every [`Devnet`] is its own anvil process (port 0: the OS picks a free port, so tests run
//! in parallel), killed when the value is dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod eventually;

pub use eventually::{Look, PATIENCE, done_if, eventually, soon};

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use eyre::{Context, Result, bail};
use farthing_chain::Deployment;
use farthing_chain::contracts::{ChannelManager, MockUSDC};

/// One USDC in base units (6 decimals).
pub const USDC: u64 = 1_000_000;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `anvil-config/devnet.env` as key/value pairs.
pub fn devnet_env() -> HashMap<String, String> {
    let path = repo_root().join("anvil-config/devnet.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

/// A running anvil devnet.
pub struct Devnet {
    child: Child,
    /// HTTP RPC URL.
    pub rpc_url: String,
    /// Chain id from `devnet.env`.
    pub chain_id: u64,
    env: HashMap<String, String>,
}

impl Devnet {
    /// Start anvil (from `contracts/node_modules`, or `$FARTHING_ANVIL`) on a free port.
    pub fn start() -> Result<Self> {
        Self::spawn(0, None)
    }

    /// Start anvil on `port` (0: a free one; [`fixed_port`] for a port to start on again).
    pub fn start_on(port: u16) -> Result<Self> {
        Self::spawn(port, None)
    }

    /// Start anvil on `port` (0: a free one) keeping its chain in `state`: loaded at start if
    /// the file exists, written when the devnet is stopped with [`Devnet::stop_gracefully`].
    /// Lets a test take the chain away from a node and bring the same chain back.
    pub fn start_persistent(port: u16, state: &Path) -> Result<Self> {
        Self::spawn(port, Some(state))
    }

    /// The port anvil listens on.
    pub fn port(&self) -> u16 {
        self.rpc_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Stop anvil with SIGTERM (it writes its state file, if any) and wait for it.
    pub fn stop_gracefully(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    fn spawn(port: u16, state: Option<&Path>) -> Result<Self> {
        let env = devnet_env();
        let anvil = std::env::var_os("FARTHING_ANVIL")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("contracts/node_modules/.bin/anvil"));
        if !anvil.exists() {
            bail!("{} is missing: run scripts/setup.sh", anvil.display());
        }
        let mut cmd = Command::new(&anvil);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--chain-id", &env["DEVNET_CHAIN_ID"]])
            .args(["--mnemonic", &env["DEVNET_MNEMONIC"]])
            .args(["--accounts", &env["DEVNET_ACCOUNTS"]])
            .args(["--balance", &env["DEVNET_BALANCE_ETH"]])
            .args(["--hardfork", &env["DEVNET_HARDFORK"]])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(state) = state {
            cmd.arg("--state").arg(state);
        }
        let mut child = cmd
            .spawn()
            .wrap_err_with(|| format!("spawning {}", anvil.display()))?;

        // anvil prints "Listening on 127.0.0.1:PORT" once it serves; keep draining its output
        // afterwards so it never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("Listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(PATIENCE) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                bail!("anvil did not report its listening address within {PATIENCE:?}");
            }
        };
        Ok(Self {
            child,
            rpc_url: format!("http://{addr}"),
            chain_id: env["DEVNET_CHAIN_ID"].parse()?,
            env,
        })
    }

    /// A devnet key from `devnet.env` (`DEPLOYER`, `ALICE`, `BOB`).
    pub fn key(&self, name: &str) -> PrivateKeySigner {
        self.env[&format!("DEVNET_{name}_KEY")].parse().unwrap()
    }

    /// Give `who` `eth` ether (anvil_setBalance).
    pub async fn fund_ether(&self, who: Address, eth: u64) -> Result<()> {
        let provider = ProviderBuilder::new().connect_http(self.rpc_url.parse()?);
        let wei = U256::from(eth) * U256::from(10u64).pow(U256::from(18));
        let _: serde_json::Value = provider
            .raw_request("anvil_setBalance".into(), (who, wei))
            .await?;
        Ok(())
    }

    /// A provider that signs and sends transactions as `signer`.
    pub fn provider(&self, signer: &PrivateKeySigner) -> DynProvider {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_http(self.rpc_url.parse().unwrap())
            .erased()
    }

    /// Deploy MockUSDC (owned by the deployer, who may mint) and ChannelManager with the
    /// devnet's challenge-period bounds; returns the deployment as `scripts/deploy.sh` would
    /// write it.
    pub async fn deploy(&self) -> Result<Deployment> {
        let deployer = self.key("DEPLOYER");
        let provider = self.provider(&deployer);
        let min: u32 = self.env["DEVNET_MIN_CHALLENGE_PERIOD"].parse()?;
        let max: u32 = self.env["DEVNET_MAX_CHALLENGE_PERIOD"].parse()?;
        let deployment_block = provider.get_block_number().await? + 1;
        let token = MockUSDC::deploy(&provider, deployer.address()).await?;
        token
            .configureMinter(deployer.address(), U256::MAX)
            .send()
            .await?
            .get_receipt()
            .await?;
        let manager = ChannelManager::deploy(&provider, min, max).await?;
        Ok(Deployment {
            chain_id: self.chain_id,
            channel_manager: *manager.address(),
            token: *token.address(),
            token_decimals: 6,
            deployment_block,
            deployer: deployer.address(),
            min_challenge_period: min,
            max_challenge_period: max,
        })
    }

    /// Mint `amount` base units of the deployment's MockUSDC to `to`.
    pub async fn mint(&self, deployment: &Deployment, to: Address, amount: u64) -> Result<()> {
        let provider = self.provider(&self.key("DEPLOYER"));
        let token = MockUSDC::new(deployment.token, &provider);
        let receipt = token
            .mint(to, U256::from(amount))
            .send()
            .await?
            .get_receipt()
            .await?;
        if !receipt.status() {
            bail!("mint to {to} reverted");
        }
        Ok(())
    }

    /// Move the chain's clock forward by `seconds` and mine a block.
    pub async fn advance_time(&self, seconds: u64) -> Result<()> {
        let provider = ProviderBuilder::new().connect_http(self.rpc_url.parse()?);
        let _: serde_json::Value = provider
            .raw_request("evm_increaseTime".into(), (seconds,))
            .await?;
        let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await?;
        Ok(())
    }

    /// Wait until the RPC answers (it does as soon as anvil prints its address; this is for
    /// callers that restart things).
    pub async fn wait_ready(&self) -> Result<()> {
        let provider = ProviderBuilder::new().connect_http(self.rpc_url.parse()?);
        let what = format!("anvil at {} to answer", self.rpc_url);
        eventually(PATIENCE, &what, async || provider.get_chain_id().await).await;
        Ok(())
    }
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

/// The real `farthing node` as a child process.
pub struct Daemon {
    child: Child,
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
        let account = account.to_string();
        let mut child = Command::new(farthing_bin())
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "node",
                "--dev",
                &account,
                "--rpc-url",
                rpc_url,
                "--rpc-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .arg("--deployment")
            .arg(deployment)
            .args(if extra.contains(&"--peer-listen") {
                &[][..]
            } else {
                &["--peer-listen", "127.0.0.1:0"][..]
            })
            .args(["--log-level", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "farthing node 0x.. peers on HOST:PORT listening on HOST:PORT"
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        if words.len() != 9 || words[6] != "listening" {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected first line: {line:?}");
        }
        Self {
            child,
            url: format!("http://{}", words[8]),
            peers: words[5].clone(),
        }
    }

    /// SIGKILL: the process dies at once, mid-write or not.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    /// SIGTERM, and the exit status of a clean shutdown.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// A free port on 127.0.0.1 below the kernel's ephemeral port range, for a server that must
/// come back on the same port after a restart (a node's peer port, a persistent anvil).
///
/// A port from the ephemeral range (what port 0 gives) is free for any outgoing connection's
/// automatic bind while its server is down — even for a client that keeps reconnecting to that
/// very port (a TCP self-connect) — and the restart then fails to bind. Ports below the range
/// are only ever taken by an explicit bind.
pub fn fixed_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    let low = 10_000u16;
    let span = ephemeral_low.saturating_sub(low).max(1);
    // Tests run in parallel (threads and processes): start at a random port of the range.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let start = (hasher.finish() % u64::from(span)) as u16;
    (0..span)
        .map(|i| low + (start + i) % span)
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port below the ephemeral range")
}

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

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
