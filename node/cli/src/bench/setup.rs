//! The run's set-up, on the devnet harness the end-to-end tests use (farthing-devnet): anvil,
//! the contracts, alice and bob funded, their nodes as processes of this binary, and the
//! channel both fund.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::Address;
use eyre::{Result, bail};
use farthing_chain::Deployment;
use farthing_devnet::{Devnet, DevnetOptions, NodeCommand, NodeProcess, USDC};
use farthing_rpc::{FarthingApiClient, OpenParams, WsClient};

use super::load::until;
use super::say;

/// Each side's deposit on the channel, in base units.
const DEPOSIT: u128 = 500_000;

/// The chain of the run: anvil, the contracts, and where the nodes find them.
pub(super) struct Chain {
    pub(super) devnet: Devnet,
    pub(super) deployment: Deployment,
    deployment_file: PathBuf,
    /// Flags every node gets (`--workers`).
    node_flags: Vec<String>,
}

impl Chain {
    /// Start anvil (`anvil`, default `contracts/node_modules/.bin/anvil`), deploy the
    /// contracts, write the deployment file into `dir`, fund alice and bob with 1,000,000
    /// USDC each.
    pub(super) async fn start(
        anvil: Option<PathBuf>,
        node_workers: Option<u16>,
        dir: &Path,
    ) -> Result<Self> {
        let anvil = anvil.unwrap_or_else(|| PathBuf::from("contracts/node_modules/.bin/anvil"));
        if !anvil.exists() {
            bail!(
                "{} is missing: run scripts/setup.sh (or pass --anvil PATH)",
                anvil.display()
            );
        }
        let devnet = Devnet::spawn(&DevnetOptions {
            anvil,
            ..DevnetOptions::default()
        })?;
        say(&format!("anvil at {}", devnet.rpc_url));
        let deployment = devnet.deploy().await?;
        let deployment_file = dir.join("deployment.json");
        std::fs::write(&deployment_file, serde_json::to_string(&deployment)?)?;
        for who in [devnet.params.alice.address(), devnet.params.bob.address()] {
            devnet.mint(&deployment, who, 1_000_000 * USDC).await?;
        }
        say("contracts deployed; alice and bob funded with 1,000,000 USDC each");
        Ok(Self {
            devnet,
            deployment,
            deployment_file,
            node_flags: node_workers
                .map(|n| vec!["--workers".into(), n.to_string()])
                .unwrap_or_default(),
        })
    }

    /// The deployment file the nodes read.
    pub(super) fn deployment_file(&self) -> PathBuf {
        self.deployment_file.clone()
    }

    /// alice's address (devnet account 1).
    pub(super) fn alice(&self) -> Address {
        self.devnet.params.alice.address()
    }

    /// bob's address (devnet account 2).
    pub(super) fn bob(&self) -> Address {
        self.devnet.params.bob.address()
    }

    /// A node of devnet account `account` (this binary, `farthing node`) with its data in
    /// `data_dir` and its log beside it (`DATA_DIR.log`), plus `extra` flags.
    pub(super) fn start_node(
        &self,
        account: u32,
        data_dir: &Path,
        extra: &[impl AsRef<str>],
    ) -> Result<NodeProcess> {
        Ok(NodeCommand::new(
            &std::env::current_exe()?,
            account,
            data_dir,
            &self.devnet.rpc_url,
            &self.deployment_file,
        )
        .args(&self.node_flags)
        .args(extra)
        .log_to(&data_dir.with_extension("log"))
        .start()?)
    }
}

/// A WebSocket RPC client of `node`, with the token from its data dir.
pub(super) async fn client(node: &NodeProcess) -> Result<Arc<WsClient>> {
    let token = farthing_rpc::read_token(&node.data_dir)?;
    Ok(Arc::new(
        farthing_rpc::connect_ws(&node.ws_url(), &token).await?,
    ))
}

/// A client of `node` under a new agent credential made with `admin`: every scope, budgets
/// per hour, day and in total that no run reaches (each payment is charged to all three).
pub(super) async fn agent_client(node: &NodeProcess, admin: &WsClient) -> Result<Arc<WsClient>> {
    let huge = || Some("1000000000".to_owned());
    let made = admin
        .create_credential(
            Some("bench".into()),
            None,
            None,
            huge(),
            huge(),
            huge(),
            None,
            None,
            None,
            None,
            None,
        )
        .await?;
    Ok(Arc::new(
        farthing_rpc::connect_ws(&node.ws_url(), &made.token).await?,
    ))
}

/// alice's node opens channel 1 to bob with 500,000 USDC and bob's node tops it up by as much;
/// returns once both nodes see both deposits.
pub(super) async fn open_channel(alice: &WsClient, bob: &WsClient, partner: Address) -> Result<()> {
    OpenParams {
        partner,
        amount: DEPOSIT.to_string(),
        challenge_period: Some(600),
    }
    .call(alice)
    .await?;
    until("bob's node to see the channel", || async {
        bob.get_channel(1).await.is_ok()
    })
    .await?;
    bob.top_up(1, DEPOSIT.to_string()).await?;
    until("alice's node to see bob's deposit", || async {
        alice
            .get_channel(1)
            .await
            .is_ok_and(|c| c.deposit_partner == DEPOSIT.to_string())
    })
    .await?;
    say("channel 1 open: 500,000 USDC from each side");
    Ok(())
}
