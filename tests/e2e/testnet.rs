//! README "Run on a public testnet", rehearsed on a local anvil posing as Base Sepolia: chain
//! id 84532, MockUSDC("USDC", "2") code at Circle's USDC address, a block every second, and
//! `anvil_setBalance` / `mint` where the README sends the operator to faucets. The steps are
//! the README's: keystores made by `cast wallet new`, `scripts/deploy.sh --token --keystore`,
//! two nodes from `config/base-sepolia.toml` (its 5 confirmations included), connect, open,
//! pay, cooperative close — balances exact. What differs: the RPC URL (`--rpc-url`, this anvil)
//! and the listen ports (free ones, so that tests can run side by side).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use alloy::primitives::{Address, B256, U256, address};
use alloy::providers::Provider;
use farthing_chain::Deployment;
use farthing_chain::contracts::MockUSDC;
use farthing_devnet::{Devnet, DevnetOptions};
use farthing_e2e::{PATIENCE, USDC, done_if, eventually, farthing_bin, repo_root};
use serde_json::Value;

/// Circle's USDC on Base Sepolia.
const CIRCLE_USDC: Address = address!("036CbD53842c5426634e7929541eC2318f3dCF7e");
const PASSWORD: &str = "a long testnet password";

fn cast() -> PathBuf {
    repo_root().join("contracts/node_modules/.bin/cast")
}

/// Run `program args` in `dir` with the keystore password in the environment; its stdout.
fn run(dir: &Path, program: &Path, args: &[&str]) -> String {
    let output = Command::new(program)
        .current_dir(dir)
        .args(args)
        .env("FARTHING_KEY_PASSWORD", PASSWORD)
        .env("CAST_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} {args:?}: {stderr}",
        program.display()
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A `farthing node` started as the README starts it (plus free ports); killed when dropped.
struct Node {
    child: Child,
    url: String,
    peers: String,
    data_dir: &'static str,
}

impl Node {
    fn start(dir: &Path, data_dir: &'static str, rpc: &str, extra: &[&str]) -> Self {
        let config = repo_root().join("config/base-sepolia.toml");
        let mut child = Command::new(farthing_bin())
            .current_dir(dir)
            .env("FARTHING_KEY_PASSWORD", PASSWORD)
            .args(["--data-dir", data_dir, "node", "--config"])
            .arg(&config)
            .args(extra)
            .args(["--rpc-url", rpc, "--log-level", "warn"])
            .args([
                "--rpc-listen",
                "127.0.0.1:0",
                "--peer-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "farthing node 0x.. peers on HOST:PORT listening on HOST:PORT"
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.len() == 9 && words[6] == "listening",
            "{data_dir} did not start: {line:?}"
        );
        Self {
            url: format!("http://{}", words[8]),
            peers: words[5].to_owned(),
            data_dir,
            child,
        }
    }

    /// `farthing --data-dir DATA --node-url URL --json ARGS`: success and the JSON answer.
    fn farthing(&self, dir: &Path, args: &[&str]) -> (bool, Value) {
        let output = Command::new(farthing_bin())
            .current_dir(dir)
            .args([
                "--data-dir",
                self.data_dir,
                "--node-url",
                &self.url,
                "--json",
            ])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::String(stdout.into()));
        (output.status.success(), json)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An anvil call.
async fn anvil(chain: &impl Provider, method: &'static str, params: Value) {
    let _: Value = chain.raw_request(method.into(), params).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_testnet_walkthrough_rehearsed_on_a_local_base_sepolia() {
    let devnet = Devnet::spawn(&DevnetOptions {
        extra_args: vec!["--block-time".into(), "1".into()],
        ..DevnetOptions::default()
    })
    .unwrap();
    let chain = devnet.reader();
    anvil(&chain, "anvil_setChainId", serde_json::json!([84532])).await;

    // Circle's USDC: MockUSDC("USDC", "2") code (its name and version are immutables) at
    // Circle's address, owned by the devnet's deployer, who mints in place of the faucet.
    let deployer_key = devnet.key("DEPLOYER");
    let deployer = devnet.provider(&deployer_key);
    let model = MockUSDC::deploy(&deployer, deployer_key.address(), "USDC".into(), "2".into())
        .await
        .unwrap();
    let code = chain.get_code_at(*model.address()).await.unwrap();
    anvil(
        &chain,
        "anvil_setCode",
        serde_json::json!([CIRCLE_USDC, code]),
    )
    .await;
    let owner = B256::left_padding_from(deployer_key.address().as_slice());
    anvil(
        &chain,
        "anvil_setStorageAt",
        serde_json::json!([CIRCLE_USDC, U256::from(3), owner]),
    )
    .await;
    let usdc = MockUSDC::new(CIRCLE_USDC, &deployer);
    assert!(
        usdc.configureMinter(deployer_key.address(), U256::MAX)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap()
            .status()
    );

    // 1. Keys: one keystore per node.
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    std::fs::create_dir(here.join("keys")).unwrap();
    run(
        here,
        &cast(),
        &["wallet", "new", "keys", "base-sepolia.json"],
    );
    run(
        here,
        &cast(),
        &["wallet", "new", "keys", "bob-sepolia.json"],
    );
    let address = |file: &str| -> Address {
        run(
            here,
            &cast(),
            &[
                "wallet",
                "address",
                "--keystore",
                file,
                "--password",
                PASSWORD,
            ],
        )
        .trim()
        .parse()
        .unwrap()
    };
    let (alice, bob) = (
        address("keys/base-sepolia.json"),
        address("keys/bob-sepolia.json"),
    );

    // 2. Faucets: ether for both, 10 USDC for alice.
    for who in [alice, bob] {
        devnet.fund_ether(who, 1).await.unwrap();
    }
    assert!(
        usdc.mint(alice, U256::from(10 * USDC))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap()
            .status()
    );

    // 3. A ChannelManager for Circle's USDC, deployed with alice's keystore.
    let deploy = repo_root().join("scripts/deploy.sh");
    std::fs::create_dir(here.join("deployments")).unwrap();
    run(
        here,
        &deploy,
        &[
            "--rpc-url",
            &devnet.rpc_url,
            "--chain-id",
            "84532",
            "--token",
            "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "--keystore",
            "keys/base-sepolia.json",
            "--out",
            "deployments/base-sepolia.json",
        ],
    );
    let d = Deployment::load(here.join("deployments/base-sepolia.json")).unwrap();
    assert_eq!(
        (
            d.chain_id,
            d.token,
            d.token_name.as_str(),
            d.token_version.as_str(),
            d.deployer
        ),
        (84532, CIRCLE_USDC, "USDC", "2", alice)
    );

    // 4. Both nodes from the profile (bob with his own keystore and data dir).
    let alice_node = Node::start(here, ".farthing-sepolia", &devnet.rpc_url, &[]);
    let bob_node = Node::start(
        here,
        ".farthing-sepolia-bob",
        &devnet.rpc_url,
        &["--keystore", "keys/bob-sepolia.json"],
    );
    let (ok, info) = alice_node.farthing(here, &["info"]);
    assert!(ok, "{info}");
    assert_eq!(info["chain_id"], 84532);
    assert_eq!(info["token_name"], "USDC");

    // 5. Connect, open 5 USDC (the profile's one-hour challenge period), pay 0.25 (retried
    // with one idempotency key until bob's node has the channel: it pays once), close.
    let (ok, answer) =
        alice_node.farthing(here, &["connect", &format!("{bob}@{}", bob_node.peers)]);
    assert!(ok, "{answer}");
    let (ok, opened) = alice_node.farthing(here, &["channel", "open", &bob.to_string(), "5"]);
    assert!(ok, "{opened}");
    assert_eq!(opened["id"], 1);
    assert_eq!(opened["challenge_period"], 3600);
    assert_eq!(
        usdc.balanceOf(alice).call().await.unwrap(),
        U256::from(5 * USDC)
    );
    eventually(
        PATIENCE,
        "the payment acknowledged by bob's node",
        async || {
            let (ok, paid) = alice_node.farthing(
                here,
                &["pay", "1", "0.25", "--idempotency-key", "first-coffee"],
            );
            done_if(ok, paid)
        },
    )
    .await;
    let (ok, again) = alice_node.farthing(
        here,
        &["pay", "1", "0.25", "--idempotency-key", "first-coffee"],
    );
    assert!(ok && again["repeated"] == true, "{again}");
    let (ok, closed) = alice_node.farthing(here, &["channel", "close", "1"]);
    assert!(ok, "{closed}");
    assert_eq!(
        usdc.balanceOf(alice).call().await.unwrap(),
        U256::from(9_750_000u64),
        "alice: 10 - 0.25"
    );
    assert_eq!(
        usdc.balanceOf(bob).call().await.unwrap(),
        U256::from(250_000u64),
        "bob: 0.25"
    );
    assert_eq!(
        usdc.balanceOf(d.channel_manager).call().await.unwrap(),
        U256::ZERO
    );
    drop(bob_node);
    drop(alice_node);
}
