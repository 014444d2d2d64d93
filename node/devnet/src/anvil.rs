//! anvil as a child process, and what the tests and the benchmark do on its chain: deploy the
//! contracts, mint, give ether, move the clock.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest::Url;
use farthing_chain::Deployment;

use crate::PATIENCE;
use farthing_chain::contracts::{ChannelManager, MockUSDC};

use crate::{DevnetParams, Error, Result, chain_error};

/// The repository this crate was built in (its anvil is the default one).
const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// How to start a [`Devnet`].
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// The anvil binary.
    pub anvil: PathBuf,
    /// Port to listen on; 0 (the default) lets the OS pick a free one.
    pub port: u16,
    /// Keep the chain in this file: loaded at start if it exists, written when the devnet is
    /// stopped with [`Devnet::stop_gracefully`].
    pub state: Option<PathBuf>,
    /// More anvil flags (e.g. `--base-fee 100000000000`).
    pub extra_args: Vec<String>,
}

impl Default for DevnetOptions {
    /// `$FARTHING_ANVIL`, else the anvil `scripts/setup.sh` installs in the repository this
    /// crate was built in; a free port; no state file.
    fn default() -> Self {
        Self {
            anvil: std::env::var_os("FARTHING_ANVIL")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(REPO_ROOT).join("contracts/node_modules/.bin/anvil")),
            port: 0,
            state: None,
            extra_args: Vec::new(),
        }
    }
}

/// A running anvil devnet, killed when dropped.
#[derive(Debug)]
pub struct Devnet {
    child: Child,
    url: Url,
    /// HTTP RPC URL.
    pub rpc_url: String,
    /// Chain id (from `devnet.env`).
    pub chain_id: u64,
    /// The devnet's parameters: keys, challenge-period bounds.
    pub params: DevnetParams,
}

impl Devnet {
    /// Start anvil ([`DevnetOptions::default`]: `$FARTHING_ANVIL` or the repository's) on a
    /// free port.
    pub fn start() -> Result<Self> {
        Self::spawn(&DevnetOptions::default())
    }

    /// Start anvil on `port` (0: a free one; a port below the ephemeral range for one to start
    /// on again).
    pub fn start_on(port: u16) -> Result<Self> {
        Self::spawn(&DevnetOptions {
            port,
            ..DevnetOptions::default()
        })
    }

    /// Start anvil on `port` (0: a free one) keeping its chain in `state`: loaded at start if
    /// the file exists, written when the devnet is stopped with [`Devnet::stop_gracefully`].
    /// Lets a test take the chain away from a node and bring the same chain back.
    pub fn start_persistent(port: u16, state: &Path) -> Result<Self> {
        Self::spawn(&DevnetOptions {
            port,
            state: Some(state.to_owned()),
            ..DevnetOptions::default()
        })
    }

    /// Start anvil as `options` say, configured from `devnet.env`; returns once it serves RPC.
    pub fn spawn(options: &DevnetOptions) -> Result<Self> {
        // Every HTTP client in the process needs rustls' provider (ring), a test's own too.
        farthing_chain::rpc::install_crypto_provider();
        let params = DevnetParams::builtin()?;
        let anvil = &options.anvil;
        if !anvil.exists() {
            return Err(Error::AnvilMissing(anvil.clone()));
        }
        let mut command = Command::new(anvil);
        command
            .args(["--host", "127.0.0.1", "--port", &options.port.to_string()])
            .args(["--chain-id", &params.chain_id.to_string()])
            .args(["--mnemonic", &params.mnemonic])
            .args(["--accounts", &params.accounts.to_string()])
            .args(["--balance", &params.balance_eth.to_string()])
            .args(["--hardfork", &params.hardfork])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(state) = &options.state {
            command.arg("--state").arg(state);
        }
        command.args(&options.extra_args);
        let mut child = command.spawn().map_err(|source| Error::Process {
            what: format!("starting {}", anvil.display()),
            source,
        })?;

        // anvil prints "Listening on 127.0.0.1:PORT" once it serves; keep draining its output
        // afterwards so it never blocks on a full pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
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
        }
        let Ok(addr) = rx.recv_timeout(PATIENCE) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::AnvilSilent);
        };
        let rpc_url = format!("http://{addr}");
        let url = match rpc_url.parse() {
            Ok(url) => url,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(chain_error("anvil's address")(e));
            }
        };
        Ok(Self {
            child,
            url,
            rpc_url,
            chain_id: params.chain_id,
            params,
        })
    }

    /// The port anvil listens on.
    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(0)
    }

    /// Stop anvil with SIGTERM (it writes its state file, if any) and wait for it.
    pub fn stop_gracefully(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// A devnet key by its name in `devnet.env`: `DEPLOYER`, `ALICE` or `BOB`.
    ///
    /// # Panics
    ///
    /// On any other name (a typo in a test).
    pub fn key(&self, name: &str) -> PrivateKeySigner {
        match self.params.key(name) {
            Some(key) => key.clone(),
            None => panic!("devnet.env has no key {name:?}: DEPLOYER, ALICE or BOB"),
        }
    }

    /// A provider that only reads (and calls anvil's own methods).
    pub fn reader(&self) -> DynProvider {
        farthing_chain::rpc::install_crypto_provider();
        ProviderBuilder::new()
            .connect_http(self.url.clone())
            .erased()
    }

    /// A provider that signs and sends transactions as `signer`.
    pub fn provider(&self, signer: &PrivateKeySigner) -> DynProvider {
        farthing_chain::rpc::install_crypto_provider();
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_http(self.url.clone())
            .erased()
    }

    /// Give `who` `eth` ether (`anvil_setBalance`).
    pub async fn fund_ether(&self, who: Address, eth: u64) -> Result<()> {
        let wei = U256::from(eth) * U256::from(10u64).pow(U256::from(18));
        let _: serde_json::Value = self
            .reader()
            .raw_request("anvil_setBalance".into(), (who, wei))
            .await
            .map_err(chain_error("anvil_setBalance"))?;
        Ok(())
    }

    /// Deploy MockUSDC (owned by the deployer, who may mint) and ChannelManager with the
    /// devnet's challenge-period bounds; returns the deployment as `scripts/deploy.sh` would
    /// write it. The token's EIP-712 domain is USDC's on Ethereum and Base ("USD Coin", "2").
    pub async fn deploy(&self) -> Result<Deployment> {
        self.deploy_token("USD Coin", "2").await
    }

    /// [`Self::deploy`] with a MockUSDC whose name and EIP-712 domain version are `name` and
    /// `version` (Base Sepolia's USDC is ("USDC", "2")).
    pub async fn deploy_token(&self, name: &str, version: &str) -> Result<Deployment> {
        let deployer = &self.params.deployer;
        let provider = self.provider(deployer);
        let (min, max) = (
            self.params.min_challenge_period,
            self.params.max_challenge_period,
        );
        let deployment_block = provider
            .get_block_number()
            .await
            .map_err(chain_error("eth_blockNumber"))?
            + 1;
        let token = MockUSDC::deploy(&provider, deployer.address(), name.into(), version.into())
            .await
            .map_err(chain_error("deploying MockUSDC"))?;
        let receipt = token
            .configureMinter(deployer.address(), U256::MAX)
            .send()
            .await
            .map_err(chain_error("MockUSDC.configureMinter"))?
            .get_receipt()
            .await
            .map_err(chain_error("MockUSDC.configureMinter's receipt"))?;
        if !receipt.status() {
            return Err(Error::Reverted("MockUSDC.configureMinter".into()));
        }
        let manager = ChannelManager::deploy(&provider, min, max)
            .await
            .map_err(chain_error("deploying ChannelManager"))?;
        Ok(Deployment {
            chain_id: self.chain_id,
            channel_manager: *manager.address(),
            token: *token.address(),
            token_decimals: 6,
            token_name: name.into(),
            token_version: version.into(),
            deployment_block,
            deployer: deployer.address(),
            min_challenge_period: min,
            max_challenge_period: max,
        })
    }

    /// Mint `amount` base units of the deployment's MockUSDC to `to`.
    pub async fn mint(&self, deployment: &Deployment, to: Address, amount: u64) -> Result<()> {
        let provider = self.provider(&self.params.deployer);
        let token = MockUSDC::new(deployment.token, &provider);
        let receipt = token
            .mint(to, U256::from(amount))
            .send()
            .await
            .map_err(chain_error("MockUSDC.mint"))?
            .get_receipt()
            .await
            .map_err(chain_error("MockUSDC.mint's receipt"))?;
        if !receipt.status() {
            return Err(Error::Reverted(format!("mint to {to}")));
        }
        Ok(())
    }

    /// Move the chain's clock forward by `seconds` and mine a block.
    pub async fn advance_time(&self, seconds: u64) -> Result<()> {
        let provider = self.reader();
        let _: serde_json::Value = provider
            .raw_request("evm_increaseTime".into(), (seconds,))
            .await
            .map_err(chain_error("evm_increaseTime"))?;
        let _: serde_json::Value = provider
            .raw_request("evm_mine".into(), ())
            .await
            .map_err(chain_error("evm_mine"))?;
        Ok(())
    }

    /// Wait (up to [`PATIENCE`]) until the RPC answers (it does as soon as anvil prints its
    /// address; this is for callers that restart things).
    pub async fn wait_ready(&self) -> Result<()> {
        let provider = self.reader();
        let deadline = Instant::now() + PATIENCE;
        while let Err(e) = provider.get_chain_id().await {
            if Instant::now() > deadline {
                return Err(chain_error(&format!("anvil at {}", self.rpc_url))(e));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
